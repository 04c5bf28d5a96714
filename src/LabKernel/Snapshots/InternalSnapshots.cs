using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Jobs;
using LabKernel.Journal;
using LabKernel.Qmp;

namespace LabKernel.Snapshots;

/// <summary>How an internal snapshot operation reached QEMU.</summary>
public enum InternalSnapshotPath
{
    /// <summary>The <c>snapshot-save</c> / <c>snapshot-load</c> / <c>snapshot-delete</c> jobs (QEMU 6.0+).</summary>
    Job,

    /// <summary>HMP <c>savevm</c> / <c>loadvm</c> / <c>delvm</c> through <c>human-monitor-command</c>.</summary>
    HumanMonitor,
}

/// <summary>
/// Internal (qcow2) snapshots of a running machine: VM state and every disk inside the images themselves.
/// </summary>
public static class InternalSnapshots
{
    /// <summary>
    /// Saves VM state and disks under <paramref name="tag"/>: the <c>snapshot-save</c> job (vmstate into
    /// <paramref name="vmStateDisk"/>, all <paramref name="disks"/>' active nodes), or HMP <c>savevm</c> when the
    /// job is unavailable or <paramref name="path"/> asks for it.
    /// </summary>
    public static Task SaveInternalSnapshotAsync(this BlockLayer block, string tag, IReadOnlyList<string> disks, string? vmStateDisk = null, InternalSnapshotPath path = InternalSnapshotPath.Job, CancellationToken cancellationToken = default) =>
        RunAsync(block, "snapshot-save", "savevm", tag, disks, vmStateDisk, path, cancellationToken);

    /// <summary>Reverts VM state and disks to <paramref name="tag"/>: <c>snapshot-load</c> job or HMP <c>loadvm</c>.</summary>
    public static Task LoadInternalSnapshotAsync(this BlockLayer block, string tag, IReadOnlyList<string> disks, string? vmStateDisk = null, InternalSnapshotPath path = InternalSnapshotPath.Job, CancellationToken cancellationToken = default) =>
        RunAsync(block, "snapshot-load", "loadvm", tag, disks, vmStateDisk, path, cancellationToken);

    /// <summary>Deletes <paramref name="tag"/> from every disk: <c>snapshot-delete</c> job or HMP <c>delvm</c>.</summary>
    public static Task DeleteInternalSnapshotAsync(this BlockLayer block, string tag, IReadOnlyList<string> disks, InternalSnapshotPath path = InternalSnapshotPath.Job, CancellationToken cancellationToken = default) =>
        RunAsync(block, "snapshot-delete", "delvm", tag, disks, null, path, cancellationToken);

    /// <summary>
    /// Lists the internal snapshots of a disk's active layer from QEMU's live view (<c>query-block</c>
    /// <c>inserted.image.snapshots</c>): id, tag, VM-state size, date and VM clock, like <c>qemu-img snapshot -l</c>.
    /// </summary>
    public static async Task<IReadOnlyList<InternalSnapshot>> ListInternalSnapshotsAsync(this BlockLayer block, string disk, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        var blocks = await block.Qmp.ExecuteAsync("query-block", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];
        var entry = blocks.OfType<JsonObject>().FirstOrDefault(b => LiveChain.MatchesDevice(b, disk, block.DeviceIdOf(disk)))
            ?? throw new UnknownBlockNodeException(disk, "in query-block");
        return entry["inserted"]?["image"] is JsonObject image ? ImageInfo.Parse(image.ToJsonString()).Snapshots : [];
    }

    /// <summary>The table <c>qemu-img snapshot -l</c> prints.</summary>
    public static string ToTable(IReadOnlyList<InternalSnapshot> snapshots)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        var sb = new StringBuilder();
        sb.AppendLine("ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT");
        foreach (var s in snapshots)
        {
            var clock = s.VmClock;
            var clockText = string.Create(CultureInfo.InvariantCulture, $"{(int)clock.TotalHours:0000}:{clock.Minutes:00}:{clock.Seconds:00}.{clock.Milliseconds:000}");
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{s.Id,-9} {s.Name,-17} {SizeText.Format(s.VmStateSize),7} {s.Date.ToLocalTime():yyyy-MM-dd HH:mm:ss} {clockText} {(s.Icount?.ToString(CultureInfo.InvariantCulture) ?? "--"),10}"));
        }
        return sb.ToString();
    }

    /// <summary>Whether <paramref name="tag"/> is a plain word QEMU and HMP take as a snapshot tag unchanged.</summary>
    public static bool IsValidTag(string tag) =>
        tag.Length is > 0 and <= 128 && tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+' or ':');

    /// <summary>A refused tag as the one-line message shows it: quoted, control characters escaped, cut at 40 characters.</summary>
    private static string ShownTag(string tag)
    {
        if (tag.Length == 0)
        {
            return "(empty)";
        }
        var sb = new StringBuilder("'");
        foreach (var c in tag.Length > 40 ? tag[..40] : tag)
        {
            sb.Append(char.IsControl(c) ? string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}") : c.ToString());
        }
        return sb.Append(tag.Length > 40 ? $"…' ({tag.Length} characters)" : "'").ToString();
    }

    private static async Task RunAsync(BlockLayer block, string jobCommand, string hmp, string tag, IReadOnlyList<string> disks, string? vmStateDisk, InternalSnapshotPath path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(tag);
        // HMP splits its command line at spaces and reads the rest as more arguments: a tag is one plain word.
        // Checked before anything is sent, on both paths (the job's tag reaches qcow2 headers and HMP listings too).
        if (!IsValidTag(tag))
        {
            throw new LabUsageException($"snapshot tag {ShownTag(tag)} is not allowed: use 1 to 128 letters, digits and . _ - + : only");
        }
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count == 0)
        {
            throw new LabUsageException("name at least one disk");
        }
        // The guard sees what QEMU will write: the job writes the named disks' active images, HMP every writable one.
        // The active layers are read once, for the guard and for the job's device list.
        var active = new Dictionary<string, LiveLayer>();
        foreach (var d in disks.Append(vmStateDisk ?? disks[0]).Distinct())
        {
            active[d] = (await block.QueryChainAsync(d, cancellationToken).ConfigureAwait(false)).Active;
        }
        var written = disks.Select(d => active[d].Filename).ToList();
        if (path == InternalSnapshotPath.HumanMonitor)
        {
            written.AddRange(await WritableActiveImagesAsync(block, cancellationToken).ConfigureAwait(false));
        }
        Host.LabFiles.EnsureMayModifyAll(written, $"{jobCommand} internal snapshot '{tag}' inside {string.Join(", ", disks)}", host: block.Host);
        var entry = LabJournal.Current.Begin("block", $"{jobCommand} {tag} ({string.Join(", ", disks)})");
        try
        {
            if (path == InternalSnapshotPath.Job)
            {
                try
                {
                    await RunJobAsync(block, jobCommand, tag, [.. disks.Select(d => active[d].NodeName)], active[vmStateDisk ?? disks[0]].NodeName, cancellationToken).ConfigureAwait(false);
                    entry.Complete("job concluded");
                    return;
                }
                catch (QmpErrorException e) when (e.ErrorClass == "CommandNotFound")
                {
                    // QEMU before 6.0: fall back to the human monitor, which writes every writable disk.
                    Host.LabFiles.EnsureMayModifyAll(await WritableActiveImagesAsync(block, cancellationToken).ConfigureAwait(false), $"{hmp} {tag} (HMP writes every writable disk)", host: block.Host);
                }
            }
            var output = await block.Qmp.HumanMonitorCommandAsync($"{hmp} {tag}", block.JobTimeout, cancellationToken).ConfigureAwait(false);
            // HMP reports failures as text, not as a QMP error.
            if (output.Contains("Error", StringComparison.OrdinalIgnoreCase) || output.Contains("not found", StringComparison.OrdinalIgnoreCase)
                || output.Contains("does not", StringComparison.OrdinalIgnoreCase))
            {
                throw new BlockOperationException($"{hmp} {tag} failed: {output.Trim()}");
            }
            entry.Complete(output.Trim().Length == 0 ? "ok" : output.Trim());
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    /// <summary>The active image of every writable drive QEMU has (<c>query-block</c>): what HMP savevm/loadvm/delvm write.</summary>
    private static async Task<IReadOnlyList<string>> WritableActiveImagesAsync(BlockLayer block, CancellationToken cancellationToken)
    {
        var blocks = await block.Qmp.ExecuteAsync("query-block", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];
        return [.. blocks.OfType<JsonObject>()
            .Select(b => b["inserted"] as JsonObject)
            .Where(i => i is not null && i["ro"]?.GetValue<bool>() != true && i["file"] is JsonValue)
            .Select(i => Block.BlockFilenames.Plain(i!["file"]!.GetValue<string>())!)];
    }

    private static async Task RunJobAsync(BlockLayer block, string command, string tag, IReadOnlyList<string> nodes, string vmStateNode, CancellationToken cancellationToken)
    {
        var id = BlockJob.NewId(command + "-");
        var args = new SnapshotJobArguments(id, tag, nodes) { Vmstate = command == "snapshot-delete" ? null : vmStateNode };
        await using var job = await BlockJob.StartAsync(block.Qmp, id, command, command, QmpJson.Args(args), new BlockJobOptions { SampleOnEvents = false }, cancellationToken: cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(block.JobTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The arguments of <c>snapshot-save</c>, <c>snapshot-load</c> and <c>snapshot-delete</c>: the job, the tag and
    /// the nodes whose images hold the snapshot. Deleting touches no VM state, so <c>snapshot-delete</c> has no
    /// <c>vmstate</c> node and the member is left out.
    /// </summary>
    private sealed record SnapshotJobArguments(string JobId, string Tag, IReadOnlyList<string> Devices)
    {
        public string? Vmstate { get; init; }
    }
}
