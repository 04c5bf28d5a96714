using System.CommandLine;

namespace LabRunner.Commands;

internal static class GuestCommand
{
    public static Command Create()
    {
        var cmd = new Command("guest", "Work with the embedded Debian guest.");
        return cmd;
    }
}
