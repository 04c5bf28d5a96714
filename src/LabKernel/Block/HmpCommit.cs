using System.Text.Json.Nodes;
using LabKernel.Journal;

namespace LabKernel.Block;

/// <summary>
/// The documents' HMP <c>commit</c> (<c>commit DRIVE</c> or <c>commit all</c>), sent only when every image it would
/// write is one the lab made.
/// </summary>
internal sealed class HmpCommit(BlockLayer block)
{
    /// <summary>See <see cref="BlockLayer.HmpCommitAsync"/>.</summary>
    public async Task<HmpCommitResult> RunAsync(string disk, CancellationToken cancellationToken)
    {
        var chain = await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        if (chain.Count < 2)
        {
            throw new BlockOperationException($"cannot commit {disk}: {chain.Active.Name} has no backing file");
        }
        var devices = await QueryCommitTargetsAsync(cancellationToken).ConfigureAwait(false);
        var device = block.DeviceIdOf(disk);
        var mine = devices.FirstOrDefault(d => d.Qdev == device || d.Qdev.StartsWith($"/machine/peripheral/{device}/", StringComparison.Ordinal));
        var all = mine is null || mine.DriveName.Length == 0;
        var affected = all ? devices.Where(d => d.Backing is not null).ToList() : [mine!];
        foreach (var d in affected)
        {
            var what = all ? $"send HMP 'commit all', which also commits disk {d.Qdev} ({d.Active} into {d.Backing})" : $"commit {d.Active} into {d.Backing}";
            Host.LabFiles.EnsureMayModify(d.Active, what, host: block.Host);
            Host.LabFiles.EnsureMayModify(d.Backing!, what, host: block.Host);
        }
        var command = all ? "commit all" : $"commit {mine!.DriveName}";
        var entry = LabJournal.Current.Begin("block", $"HMP {command} ({string.Join(", ", affected.Select(d => $"{Path.GetFileName(d.Active)} into {Path.GetFileName(d.Backing)}"))})");
        var reply = (await block.Qmp.HumanMonitorCommandAsync(command, block.JobTimeout, cancellationToken).ConfigureAwait(false)).Trim();
        if (reply.Length > 0)
        {
            entry.Fail(reply);
            throw new BlockOperationException($"HMP {command} failed: {reply.Split('\n')[0]}");
        }
        entry.Complete("done");
        return new HmpCommitResult(command, affected.Select(d => d.Backing!).ToArray());
    }

    private sealed record CommitTarget(string DriveName, string Qdev, string Active, string? Backing);

    /// <summary>Every device with a medium: its drive name, qdev path, active file and backing file (<c>query-block</c>).</summary>
    private async Task<IReadOnlyList<CommitTarget>> QueryCommitTargetsAsync(CancellationToken cancellationToken)
    {
        var blocks = await block.Chains.QueryBlockAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<CommitTarget>();
        foreach (var b in blocks.OfType<JsonObject>())
        {
            if (b["inserted"] is not JsonObject inserted || inserted["image"] is not JsonObject image)
            {
                continue;
            }
            var backing = BlockFilenames.Plain((image["backing-image"] as JsonObject)?["filename"]?.GetValue<string>());
            result.Add(new CommitTarget(b["device"]?.GetValue<string>() ?? "", b["qdev"]?.GetValue<string>() ?? "",
                BlockFilenames.Plain(image["filename"]?.GetValue<string>() ?? inserted["file"]?.GetValue<string>()) ?? "", string.IsNullOrEmpty(backing) ? null : backing));
        }
        return result;
    }
}
