using System.Globalization;
using LabKernel.Experiments;
using LabKernel.Host;
using LabKernel.Libvirt;

namespace LabKernel.Diagnostics;

/// <summary>A run's image folder on another host, and why it is still there.</summary>
/// <param name="Folder">The folder there.</param>
/// <param name="Bytes">What its files take (apparent sizes, <c>du -sb</c>).</param>
/// <param name="Kept">The run kept its artifacts on purpose (<see cref="ExperimentRun.KeptMark"/>).</param>
/// <param name="UsedBy">Why it is in use, or null: a process there names a file in it, or a domain's definition does.</param>
public sealed record HostLeftoverRun(string Folder, long Bytes, bool Kept, string? UsedBy)
{
    /// <summary>
    /// The take-over record of the shut-off domain whose definition names the lab's overlays in this folder (a run
    /// killed before its hand-back): `lab clean` hands the domain back from it, then removes the folder.
    /// </summary>
    public Backends.TakeOverRecord? HandBack { get; init; }
}

/// <summary>What runs left under the lab's folder on a hypervisor reached over SSH.</summary>
/// <param name="Host">How messages name the host (<c>user@host:port</c>).</param>
/// <param name="HostFolder">The folder looked in (the runs' <c>HostFolder</c>).</param>
/// <param name="Runs">The lab's run folders found there (those with <see cref="ExperimentRun.RunMark"/>).</param>
/// <param name="Foreign">Entries there without the lab's mark: never touched, only counted.</param>
public sealed record HostLeftoverReport(string Host, string HostFolder, IReadOnlyList<HostLeftoverRun> Runs, int Foreign)
{
    /// <summary>The libvirt connection whose domains were read (to hand a domain back).</summary>
    public string LibvirtUri { get; init; } = LibvirtConnection.DefaultUri;

    /// <summary>One line for <c>lab clean</c> and <c>lab doctor</c>.</summary>
    public string Summary
    {
        get
        {
            var free = Runs.Where(r => !r.Kept && r.UsedBy is null).ToList();
            var parts = new List<string>
            {
                free.Count == 0 ? "no run folders left" : $"{free.Count} run folder(s) left ({free.Sum(r => r.Bytes) / 1048576.0:0.#} MiB)",
            };
            if (Runs.Count(r => r.HandBack is not null) is > 0 and var handBack)
            {
                parts.Add($"{handBack} domain(s) to hand back ({string.Join(", ", Runs.Where(r => r.HandBack is not null).Select(r => r.HandBack!.Domain))})");
            }
            if (Runs.Count(r => r.Kept) is > 0 and var kept)
            {
                parts.Add($"{kept} kept on purpose");
            }
            if (Runs.Count(r => r.UsedBy is not null && r.HandBack is null) is > 0 and var used)
            {
                parts.Add($"{used} in use");
            }
            if (Foreign > 0)
            {
                parts.Add($"{Foreign} other entr{(Foreign == 1 ? "y" : "ies")} not the lab's");
            }
            return $"{HostFolder} on {Host}: {string.Join(", ", parts)}";
        }
    }
}

/// <summary>
/// The run folders interrupted runs left on a hypervisor the lab reached over SSH (a run's images live there, under
/// <c>HostFolder</c>, and a killed kernel never deletes them). Only folders carrying the lab's mark are ever
/// removed; one a process there or a domain's definition still names stays, as does one kept on purpose unless
/// asked.
/// </summary>
public static class HostLeftovers
{
    /// <summary>The run folders under <paramref name="hostFolder"/> on <paramref name="host"/>, with what uses them.</summary>
    public static async Task<HostLeftoverReport> FindAsync(ILabHost host, string libvirtUri, string hostFolder = ExperimentRun.DefaultHostFolder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!hostFolder.StartsWith('/'))
        {
            throw new LabUsageException($"--host-folder '{hostFolder}' is not an absolute path on {host.Name}");
        }
        hostFolder = hostFolder.TrimEnd('/');
        if (hostFolder.Length == 0 || !await host.DirectoryExistsAsync(hostFolder, cancellationToken).ConfigureAwait(false))
        {
            return new HostLeftoverReport(host.Name, hostFolder, [], 0);
        }
        // One listing: each entry, whether it is a directory with the lab's mark (and the kept mark), and its size; the
        // lab's copy of the guest image for its domains there is neither a run nor another's.
        const string List = """
            cd "$1" || exit 1
            for e in * .[!.]*; do
              [ -e "$e" ] || continue
              [ "$e" = "$4" ] && continue
              if [ -d "$e" ] && [ -f "$e/$2" ]; then
                k=0; [ -f "$e/$3" ] && k=1
                printf 'run\t%s\t%s\t%s\n' "$k" "$(du -sb "$e" | cut -f1)" "$e"
              else
                printf 'other\t%s\n' "$e"
              fi
            done
            """;
        var listing = await host.RunAsync("sh", ["-c", List, "sh", hostFolder, ExperimentRun.RunMark, ExperimentRun.KeptMark, Guests.HostGuestImages.FolderName],
            new Processes.ProcessOptions { Timeout = TimeSpan.FromMinutes(2) }, cancellationToken).ConfigureAwait(false);
        var processes = await host.RunAsync("ps", ["-eo", "pid=,args="], new Processes.ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        var domains = await DomainUse.ReadAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
        var runs = new List<HostLeftoverRun>();
        var foreign = 0;
        foreach (var line in listing.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t', 4);
            if (f[0] != "run" || f.Length < 4)
            {
                foreign++;
                continue;
            }
            var folder = $"{hostFolder}/{f[3]}";
            string? usedBy = null;
            Backends.TakeOverRecord? handBack = null;
            if (processes.StandardOutput.Split('\n').FirstOrDefault(p => p.Contains(folder + "/", StringComparison.Ordinal)) is { } p)
            {
                usedBy = $"process {p.Trim().Split(' ', 2)[0]} there names a file in it";
            }
            else if (await domains.JudgeAsync(host, folder, cancellationToken).ConfigureAwait(false) is { } judged)
            {
                (usedBy, handBack) = judged;
            }
            runs.Add(new HostLeftoverRun(folder, long.Parse(f[2], CultureInfo.InvariantCulture), f[1] == "1", usedBy) { HandBack = handBack });
        }
        return new HostLeftoverReport(host.Name, hostFolder, runs, foreign) { LibvirtUri = libvirtUri };
    }

    /// <summary>Removes the run folders <paramref name="report"/> found that nothing uses (kept ones only with <paramref name="includeKept"/>); one line each.</summary>
    public static async Task<IReadOnlyList<string>> CleanAsync(ILabHost host, HostLeftoverReport report, bool includeKept, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(report);
        var lines = new List<string>();
        foreach (var run in report.Runs)
        {
            if (run.HandBack is { } record)
            {
                lines.Add(await Leftovers.HandBackAsync(record, report.LibvirtUri, host, run.Folder, cancellationToken).ConfigureAwait(false));
                if (await Leftovers.StillNamedAsync(report.LibvirtUri, record.Domain, run.Folder, cancellationToken).ConfigureAwait(false))
                {
                    lines.Add($"kept {run.Folder} on {report.Host}: domain {record.Domain}'s definition still names it");
                    continue;
                }
                await host.DeleteDirectoryAsync(run.Folder, recursive: true, cancellationToken).ConfigureAwait(false);
                lines.Add($"removed {run.Folder} on {report.Host} ({run.Bytes / 1048576.0:0.#} MiB)");
            }
            else if (run.UsedBy is not null)
            {
                lines.Add($"kept {run.Folder} on {report.Host}: in use ({run.UsedBy})");
            }
            else if (run.Kept && !includeKept)
            {
                lines.Add($"kept {run.Folder} on {report.Host}: KeepArtifacts (lab clean --all removes it)");
            }
            else
            {
                await host.DeleteDirectoryAsync(run.Folder, recursive: true, cancellationToken).ConfigureAwait(false);
                lines.Add($"removed {run.Folder} on {report.Host} ({run.Bytes / 1048576.0:0.#} MiB)");
            }
        }
        return lines;
    }
}
