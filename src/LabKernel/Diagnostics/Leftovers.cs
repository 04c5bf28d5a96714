using LabKernel.Backends;
using LabKernel.Host;
using LabKernel.Libvirt;

namespace LabKernel.Diagnostics;

/// <summary>A run folder under the lab's cache, and why it is still there.</summary>
/// <param name="Folder">The folder.</param>
/// <param name="Bytes">What its files take on disk (apparent sizes).</param>
/// <param name="Kept">It holds <c>artifacts.json</c>: a run asked to keep its files (<c>KeepArtifacts</c>).</param>
/// <param name="InUse">A running process (a QEMU) names a file in it on its command line.</param>
public sealed record LeftoverRun(string Folder, long Bytes, bool Kept, bool InUse)
{
    /// <summary>Why it is in use, when a domain's definition names a file in it (or libvirt could not be asked about one the lab took over).</summary>
    public string? UsedBy { get; init; }

    /// <summary>The take-over record of the shut-off domain still on the lab's overlays here: `lab clean` hands it back, then removes the folder.</summary>
    public Backends.TakeOverRecord? HandBack { get; init; }
}

/// <summary>A libvirt domain the lab defined (<c>lab-</c> name, disks in the lab's cache) and did not remove.</summary>
public sealed record LeftoverDomain(string Name, DomainState State, IReadOnlyList<string> Disks);

/// <summary>A QEMU (or an offline read's storage daemon) the lab started whose lab process is gone (killed): it still runs, holding its images.</summary>
public sealed record OrphanQemu(int Pid, string RuntimeFolder, string CommandLine);

/// <summary>What interrupted runs left behind, found by <c>lab doctor</c> and removed by <c>lab clean</c>.</summary>
public sealed record LeftoverReport(IReadOnlyList<LeftoverRun> Runs, IReadOnlyList<LeftoverDomain> Domains, string? LibvirtProblem, IReadOnlyList<OrphanQemu> Orphans)
{
    /// <summary>One line for <c>lab doctor</c>.</summary>
    public string Summary
    {
        get
        {
            var stale = Runs.Where(r => !r.Kept && !r.InUse).ToList();
            var parts = new List<string>
            {
                $"{stale.Count} run folder(s) left by interrupted runs ({stale.Sum(r => r.Bytes) / 1048576.0:0.#} MiB)",
                $"{Runs.Count(r => r.Kept)} kept on purpose (KeepArtifacts)",
                $"{Domains.Count} lab-made libvirt domain(s)",
                $"{Orphans.Count} QEMU(s) whose lab process is gone",
            };
            if (Runs.Any(r => r.InUse))
            {
                parts.Add($"{Runs.Count(r => r.InUse)} in use now");
            }
            if (LibvirtProblem is not null)
            {
                parts.Add($"libvirt not checked: {LibvirtProblem}");
            }
            return string.Join("; ", parts);
        }
    }

    public bool Any => Runs.Any(r => !r.Kept && !r.InUse) || Domains.Count > 0 || Orphans.Count > 0;
}

/// <summary>
/// Finds and removes what runs leave when they are interrupted (a killed kernel, a failed cell that never reached
/// clean-up): run folders under the cache's <c>runs/</c> and the lab's own libvirt domains. It removes nothing a
/// run is using, nothing kept on purpose unless asked, and no domain but those the lab named <c>lab-</c> whose
/// every disk lies in the lab's cache.
/// </summary>
public static class Leftovers
{
    public static string RunsFolder => Path.Combine(LabPaths.CacheRoot, "runs");

    public static async Task<LeftoverReport> FindAsync(string libvirtUri = LibvirtConnection.DefaultUri, CancellationToken cancellationToken = default)
    {
        var processes = HostProcesses.List();
        var orphans = FindOrphans(processes);
        // An orphan's images are leftovers too: its run folder is not "in use" by a run that still lives.
        var commandLines = processes.Where(p => orphans.All(o => o.Pid != p.Pid)).Select(p => p.CommandLine).ToList();
        var runs = new List<LeftoverRun>();
        if (Directory.Exists(RunsFolder))
        {
            foreach (var folder in Directory.GetDirectories(RunsFolder).Order(StringComparer.Ordinal))
            {
                var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories);
                runs.Add(new LeftoverRun(folder, files.Sum(f => new FileInfo(f).Length), File.Exists(Path.Combine(folder, "artifacts.json")),
                    commandLines.Any(c => c.Contains(folder + "/", StringComparison.Ordinal))));
            }
        }
        var domains = new List<LeftoverDomain>();
        string? problem = null;
        DomainUse? use = null;
        try
        {
            use = await DomainUse.ReadAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
            await using var connection = await LibvirtConnection.OpenAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
            foreach (var name in (await connection.ListDomainNamesAsync(cancellationToken).ConfigureAwait(false)).Where(n => n.StartsWith("lab-", StringComparison.Ordinal)))
            {
                using var domain = await connection.LookupDomainAsync(name, cancellationToken).ConfigureAwait(false);
                var disks = (await domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false)).Select(d => d.Source).Where(s => s.Length > 0).ToList();
                if (disks.Count > 0 && disks.All(d => Path.GetFullPath(d).StartsWith(LabPaths.CacheRoot + "/", StringComparison.Ordinal)))
                {
                    domains.Add(new LeftoverDomain(name, await domain.GetStateAsync(cancellationToken).ConfigureAwait(false), disks));
                }
            }
        }
        catch (LabException e)
        {
            problem = e.Message;
        }
        // A folder a domain's definition names stays (the domain would not start without it); one whose shut-off domain
        // the lab took over and never handed back (its process was killed) is handed back first.
        for (var i = 0; i < runs.Count; i++)
        {
            if (runs[i].InUse)
            {
                continue;
            }
            if (use is null)
            {
                if (await TakeOverRecord.ReadAsync(LocalHost.Instance, runs[i].Folder, cancellationToken).ConfigureAwait(false) is { } record)
                {
                    runs[i] = runs[i] with { InUse = true, UsedBy = $"the lab took over domain {record.Domain} in it, and libvirt could not be asked whether it still names it" };
                }
            }
            else if (await use.JudgeAsync(LocalHost.Instance, runs[i].Folder, cancellationToken).ConfigureAwait(false) is { } judged)
            {
                runs[i] = runs[i] with { InUse = judged.HandBack is null, UsedBy = judged.UsedBy, HandBack = judged.HandBack };
            }
        }
        return new LeftoverReport(runs, domains, problem, orphans);
    }

    /// <summary>
    /// Removes the leftovers <paramref name="report"/> found: shut-off lab domains are undefined (running ones are a
    /// run in progress and stay), run folders nobody uses are deleted (kept ones only with
    /// <paramref name="includeKept"/>). Returns one line per thing removed or left.
    /// </summary>
    public static async Task<IReadOnlyList<string>> CleanAsync(LeftoverReport report, bool includeKept, string libvirtUri = LibvirtConnection.DefaultUri, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        var lines = new List<string>();
        foreach (var orphan in report.Orphans)
        {
            lines.Add(await StopOrphanAsync(orphan, cancellationToken).ConfigureAwait(false));
        }
        if (report.Domains.Count > 0)
        {
            await using var connection = await LibvirtConnection.OpenAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
            foreach (var d in report.Domains)
            {
                if (d.State != DomainState.ShutOff)
                {
                    lines.Add($"kept domain {d.Name}: it is {d.State} (a run in progress?)");
                    continue;
                }
                using var domain = await connection.LookupDomainAsync(d.Name, cancellationToken).ConfigureAwait(false);
                await domain.UndefineAsync(cancellationToken).ConfigureAwait(false);
                lines.Add($"undefined domain {d.Name}");
            }
        }
        var busy = report.Domains.Where(d => d.State != DomainState.ShutOff).SelectMany(d => d.Disks).ToList();
        foreach (var run in report.Runs)
        {
            if (run.HandBack is { } record)
            {
                lines.Add(await HandBackAsync(record, libvirtUri, LocalHost.Instance, run.Folder, cancellationToken).ConfigureAwait(false));
                if (await StillNamedAsync(libvirtUri, record.Domain, run.Folder, cancellationToken).ConfigureAwait(false))
                {
                    lines.Add($"kept {run.Folder}: domain {record.Domain}'s definition still names it");
                    continue;
                }
                Directory.Delete(run.Folder, recursive: true);
                lines.Add($"removed {run.Folder} ({run.Bytes / 1048576.0:0.#} MiB)");
            }
            else if (run.InUse || busy.Any(disk => disk.StartsWith(run.Folder + "/", StringComparison.Ordinal)))
            {
                lines.Add($"kept {run.Folder}: in use{(run.UsedBy is { } why ? $" ({why})" : "")}");
            }
            else if (run.Kept && !includeKept)
            {
                lines.Add($"kept {run.Folder}: KeepArtifacts (lab clean --all removes it)");
            }
            else
            {
                Directory.Delete(run.Folder, recursive: true);
                lines.Add($"removed {run.Folder} ({run.Bytes / 1048576.0:0.#} MiB)");
            }
        }
        return lines;
    }

    /// <summary>
    /// Hands a domain the lab took over back from its <see cref="TakeOverRecord"/> in <paramref name="folder"/>, after
    /// checking again that it is shut off and still on the lab's overlays there. One line either way.
    /// </summary>
    internal static async Task<string> HandBackAsync(TakeOverRecord record, string libvirtUri, ILabHost host, string folder, CancellationToken cancellationToken)
    {
        await using var connection = await LibvirtConnection.OpenAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
        using var domain = await connection.LookupDomainAsync(record.Domain, cancellationToken).ConfigureAwait(false);
        var why = TakeOverRecord.CannotHandBack(await domain.GetStateAsync(cancellationToken).ConfigureAwait(false),
            await domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false), record, folder);
        if (why is not null)
        {
            return $"did not hand domain {record.Domain} back: {why}";
        }
        var line = await record.HandBackAsync(domain, cancellationToken).ConfigureAwait(false);
        await Block.BlockLayer.TryAsync(() => host.DeleteFileAsync(Path.Combine(folder, TakeOverRecord.FileName), cancellationToken)).ConfigureAwait(false);
        return line;
    }

    /// <summary>Whether <paramref name="domain"/>'s definition (persistent or running) still names a file in <paramref name="folder"/>.</summary>
    internal static async Task<bool> StillNamedAsync(string libvirtUri, string domain, string folder, CancellationToken cancellationToken)
    {
        await using var connection = await LibvirtConnection.OpenAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
        using var d = await connection.LookupDomainAsync(domain, cancellationToken).ConfigureAwait(false);
        var prefix = folder.TrimEnd('/') + "/";
        return (await DomainUse.FilesOfAsync(d, cancellationToken).ConfigureAwait(false)).Files.Any(f => f.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>
    /// QEMUs whose QMP socket lies in a lab runtime folder (<c>lab-NAME-XXXXXXXXXX</c> under the runtime or temp
    /// folder) and whose parent is no longer a .NET process: the lab (or its notebook kernel) that started it died.
    /// </summary>
    public static IReadOnlyList<OrphanQemu> FindOrphans() => FindOrphans(HostProcesses.List());

    private static List<OrphanQemu> FindOrphans(IReadOnlyList<HostProcess> processes)
    {
        var names = processes.ToDictionary(p => p.Pid, p => p.Name);
        var orphans = new List<OrphanQemu>();
        foreach (var p in processes.Where(p => p.Name.StartsWith("qemu-system", StringComparison.Ordinal)))
        {
            var qmp = p.Argv.SkipWhile(a => a != "-qmp").Skip(1).FirstOrDefault();
            if (qmp is null || !qmp.StartsWith("unix:", StringComparison.Ordinal))
            {
                continue;
            }
            var runtime = Path.GetDirectoryName(qmp["unix:".Length..].Split(',')[0]) ?? "";
            if (!Path.GetFileName(runtime).StartsWith("lab-", StringComparison.Ordinal))
            {
                continue;
            }
            var parent = names.GetValueOrDefault(p.ParentPid, "");
            if (p.ParentPid == 1 || parent != "dotnet" && !parent.StartsWith("testhost", StringComparison.Ordinal) && parent != "lab")
            {
                orphans.Add(new OrphanQemu(p.Pid, runtime, p.CommandLine));
            }
        }
        // An offline read's FUSE view (Integrity.FuseExport): a daemon always (it daemonizes), so its lab process is
        // the one its folder's owner file names, by pid and start time.
        foreach (var p in processes.Where(p => p.Argv.Count > 0 && p.Argv[0].EndsWith("qemu-storage-daemon", StringComparison.Ordinal)))
        {
            var pidFile = p.Argv.SkipWhile(a => a != "--pidfile").Skip(1).FirstOrDefault();
            var folder = pidFile is null ? "" : Path.GetDirectoryName(pidFile) ?? "";
            if (!Path.GetFileName(folder).StartsWith("layer-read-", StringComparison.Ordinal))
            {
                continue;
            }
            string owner;
            try
            {
                owner = File.ReadAllText(Path.Combine(folder, Integrity.FuseExport.OwnerFile)).Trim();
            }
            catch (IOException)
            {
                continue; // no owner named: not ours to judge
            }
            if (owner.Split(' ') is [var pid, _] && int.TryParse(pid, out var id) && HostProcesses.Identity(id) != owner)
            {
                orphans.Add(new OrphanQemu(p.Pid, folder, p.CommandLine));
            }
        }
        return orphans;
    }

    /// <summary>SIGTERM (QEMU closes its images cleanly), SIGKILL if it has not exited after 30 s; then its runtime folder goes.</summary>
    private static async Task<string> StopOrphanAsync(OrphanQemu orphan, CancellationToken cancellationToken)
    {
        using var process = System.Diagnostics.Process.GetProcessById(orphan.Pid);
        await Processes.ProcessRunner.RunAsync("kill", ["-TERM", orphan.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], new Processes.ProcessOptions { Check = false }, cancellationToken).ConfigureAwait(false);
        var how = "stopped (SIGTERM)";
        try
        {
            await Host.Poll.ForAsync(process.WaitForExitAsync(cancellationToken), $"orphaned QEMU {orphan.Pid} to exit after SIGTERM", TimeSpan.FromSeconds(30),
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            process.Kill();
            how = "killed (no exit 30 s after SIGTERM)";
        }
        // A killed storage daemon leaves its FUSE view mounted (a SIGTERM'd one unmounts it itself).
        foreach (var mount in File.ReadAllLines("/proc/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(orphan.RuntimeFolder + "/", StringComparison.Ordinal)))
        {
            await Processes.ProcessRunner.RunAsync("umount", ["-l", mount], new Processes.ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        }
        if (Directory.Exists(orphan.RuntimeFolder))
        {
            Directory.Delete(orphan.RuntimeFolder, recursive: true);
        }
        var what = orphan.CommandLine.Contains("qemu-storage-daemon", StringComparison.Ordinal) ? "offline-read daemon" : "QEMU";
        return $"{how} orphaned {what} pid {orphan.Pid} ({Path.GetFileName(orphan.RuntimeFolder)})";
    }
}
