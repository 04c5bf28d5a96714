using System.CommandLine;
using LabKernel.Diagnostics;
using LabKernel.Experiments;
using LabKernel.Libvirt;

namespace LabRunner.Commands;

/// <summary>
/// <c>lab clean [--all] [-n] [--uri URI [--host-folder DIR]]</c>: removes what interrupted runs left (run folders,
/// lab-made libvirt domains); with a <c>qemu+ssh://</c> URI, the run folders they left on that hypervisor.
/// </summary>
internal static class CleanCommand
{
    public static Command Create()
    {
        var all = new Option<bool>("--all") { Description = "Also remove run folders kept on purpose (KeepArtifacts)." };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Only list what would be removed." };
        var uri = new Option<string?>("--uri") { Description = "A hypervisor reached over SSH (qemu+ssh://USER@HOST/system?keyfile=...&known_hosts=...): clean the run folders runs left there." };
        var hostFolder = new Option<string?>("--host-folder") { Description = $"With --uri: the folder runs made their image folders in there (their HostFolder; default {ExperimentRun.DefaultHostFolder})." };
        var cmd = new Command("clean", "Remove what interrupted runs left: run folders under the lab's cache nobody uses, and shut-off libvirt domains the lab defined; with --uri, the run folders on that hypervisor. Never an image the lab did not make.")
        {
            all,
            dryRun,
            uri,
            hostFolder,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(uri) is { Length: > 0 } remote && !LabHosts.FilesAreLocal(remote))
            {
                return await CleanHostAsync(remote, parse.GetValue(hostFolder) ?? ExperimentRun.DefaultHostFolder, parse.GetValue(all), parse.GetValue(dryRun), ct).ConfigureAwait(false);
            }
            if (parse.GetValue(hostFolder) is not null)
            {
                throw new LabKernel.LabUsageException("--host-folder needs --uri naming a host reached over SSH (a local run's images are in its run folder)");
            }
            var libvirtUri = parse.GetValue(uri) is { Length: > 0 } u ? u : LibvirtConnection.DefaultUri;
            var report = await Leftovers.FindAsync(libvirtUri, ct).ConfigureAwait(false);
            Console.WriteLine($"lab clean: {report.Summary}");
            if (parse.GetValue(dryRun))
            {
                foreach (var d in report.Domains)
                {
                    Console.WriteLine($"would undefine domain {d.Name} ({d.State})");
                }
                foreach (var r in report.Runs.Where(r => !r.InUse && (!r.Kept || parse.GetValue(all) || r.HandBack is not null)))
                {
                    Console.WriteLine(r.HandBack is { } h ? $"would hand domain {h.Domain} back to its own images, then remove {r.Folder}" : $"would remove {r.Folder}");
                }
                return 0;
            }
            foreach (var line in await Leftovers.CleanAsync(report, parse.GetValue(all), libvirtUri, ct).ConfigureAwait(false))
            {
                Console.WriteLine(line);
            }
            return 0;
        });
        return cmd;
    }

    private static async Task<int> CleanHostAsync(string uri, string hostFolder, bool all, bool dryRun, CancellationToken ct)
    {
        var host = await LabHosts.ForLibvirtUriAsync(uri, ct).ConfigureAwait(false);
        await using (host.ConfigureAwait(false))
        {
            var report = await HostLeftovers.FindAsync(host, uri, hostFolder, ct).ConfigureAwait(false);
            Console.WriteLine($"lab clean: {report.Summary}");
            if (dryRun)
            {
                foreach (var r in report.Runs.Where(r => r.HandBack is not null || r.UsedBy is null && (!r.Kept || all)))
                {
                    Console.WriteLine(r.HandBack is { } h ? $"would hand domain {h.Domain} back to its own images, then remove {r.Folder} on {report.Host}" : $"would remove {r.Folder} on {report.Host}");
                }
                return 0;
            }
            foreach (var line in await HostLeftovers.CleanAsync(host, report, all, ct).ConfigureAwait(false))
            {
                Console.WriteLine(line);
            }
            return 0;
        }
    }
}
