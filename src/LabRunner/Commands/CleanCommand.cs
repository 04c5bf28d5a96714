using System.CommandLine;
using LabKernel.Diagnostics;

namespace LabRunner.Commands;

/// <summary><c>lab clean [--all]</c>: removes what interrupted runs left (run folders, lab-made libvirt domains).</summary>
internal static class CleanCommand
{
    public static Command Create()
    {
        var all = new Option<bool>("--all") { Description = "Also remove run folders kept on purpose (KeepArtifacts)." };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Only list what would be removed." };
        var cmd = new Command("clean", "Remove what interrupted runs left: run folders under the lab's cache nobody uses, and shut-off libvirt domains the lab defined. Never an image the lab did not make.")
        {
            all,
            dryRun,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var report = await Leftovers.FindAsync(cancellationToken: ct).ConfigureAwait(false);
            Console.WriteLine($"lab clean: {report.Summary}");
            if (parse.GetValue(dryRun))
            {
                foreach (var d in report.Domains)
                {
                    Console.WriteLine($"would undefine domain {d.Name} ({d.State})");
                }
                foreach (var r in report.Runs.Where(r => !r.InUse && (!r.Kept || parse.GetValue(all))))
                {
                    Console.WriteLine($"would remove {r.Folder}");
                }
                return 0;
            }
            foreach (var line in await Leftovers.CleanAsync(report, parse.GetValue(all), cancellationToken: ct).ConfigureAwait(false))
            {
                Console.WriteLine(line);
            }
            return 0;
        });
        return cmd;
    }
}
