using System.CommandLine;

namespace LabRunner.Commands;

internal static class DoctorCommand
{
    public static Command Create()
    {
        var cmd = new Command("doctor", "Check what the lab needs: QEMU, qemu-img, libvirt, fio, the accelerator and the guest image.");
        cmd.SetAction((_, ct) => Task.FromResult(0));
        return cmd;
    }
}
