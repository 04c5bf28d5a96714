using System.CommandLine;
using LabKernel.Diagnostics;

namespace LabRunner.Commands;

/// <summary><c>lab doctor</c>: versions, accelerator and guest image; exit 1 names the missing piece.</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var uri = new Option<string>("--uri") { HelpName = "URI", Description = "Also check a libvirt host (qemu+ssh://USER@HOST/system?keyfile=KEY&known_hosts=FILE): libvirt there, SSH to its files, the programs the lab runs there, a folder it can use." };
        var hostFolder = new Option<string>("--host-folder") { HelpName = "FOLDER", Description = "With --uri: the folder on that host for the lab's run folders (default /var/tmp/labnotebooks)." };
        var cmd = new Command("doctor", "Check what the lab needs: QEMU, qemu-img, libvirt, fio, the accelerator and the guest image.") { uri, hostFolder };
        cmd.SetAction(async (parse, ct) =>
        {
            var checks = (await LabDoctor.CheckAsync(ct).ConfigureAwait(false)).ToList();
            if (parse.GetValue(uri) is { Length: > 0 } u)
            {
                checks.AddRange(await LabDoctor.CheckHostAsync(u, parse.GetValue(hostFolder), ct).ConfigureAwait(false));
            }
            var width = checks.Max(c => c.Name.Length);
            foreach (var c in checks)
            {
                var mark = c.Ok ? "ok  " : c.Required ? "FAIL" : "warn";
                Console.WriteLine($"{mark} {c.Name.PadRight(width)}  {c.Value}");
            }
            var missing = checks.Where(c => c.Required && !c.Ok).Select(c => c.Name).ToList();
            if (missing.Count > 0)
            {
                Console.Error.WriteLine($"lab doctor: the lab cannot run: missing {string.Join(", ", missing)}");
                return 1;
            }
            Console.WriteLine("lab doctor: the lab can run");
            return 0;
        });
        return cmd;
    }
}
