using System.Text.Json.Nodes;
using LabKernel.Jobs;
using LabKernel.Journal;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// The jobs that change a disk's chain: <c>block-commit</c>, <c>block-stream</c>, <c>drive-mirror</c> and
/// <c>blockdev-mirror</c>, each sent from a typed arguments record built from the caller's options
/// (<see cref="BlockCommitOptions"/>, <see cref="BlockStreamOptions"/>, <see cref="MirrorOptions"/>). A job forgets
/// the disk's remembered chain when it starts and again, on its own event pump, when it concludes.
/// </summary>
internal sealed class ChainJobs(BlockLayer block)
{
    /// <summary>See <see cref="BlockLayer.StartCommitAsync"/>.</summary>
    public async Task<BlockJob> StartCommitAsync(string disk, string? top, string? @base, BlockCommitOptions? options, CancellationToken cancellationToken)
    {
        options ??= new BlockCommitOptions();
        var chain = await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var topLayer = top is null ? chain.Active : chain.Find(top) ?? throw NotInChain(top, disk, chain);
        var baseLayer = @base is null ? chain.Base : chain.Find(@base) ?? throw NotInChain(@base, disk, chain);
        // The base is the image a commit writes: the bottom of the chain is often the cached guest image or a
        // researcher's own disk, so an implicit base must be an image the lab made.
        Host.LabFiles.EnsureMayModify(baseLayer.Filename, $"commit {disk} into {baseLayer.Filename} (the chain's base, not named by the caller)", namedByCaller: @base is not null, host: block.Host);
        var topDepth = chain.DepthOf(topLayer);
        var baseDepth = chain.DepthOf(baseLayer);
        if (topDepth == baseDepth)
        {
            throw new InvalidCommitRangeException(topLayer.Name, baseLayer.Name, "top and base are the same layer");
        }
        if (baseDepth < topDepth)
        {
            throw new InvalidCommitRangeException(topLayer.Name, baseLayer.Name, "the base is above the top in the chain");
        }
        var id = options.JobId ?? BlockJob.NewId("commit-");
        var args = new BlockCommitArguments(id, chain.Active.NodeName, topLayer.NodeName, baseLayer.NodeName, AutoFinalize: options.AutoFinalize)
        {
            Speed = options.Speed,
            BackingFile = options.BackingFile,
            OnError = Policy(options.OnError),
        };
        return await StartJobAsync(disk, id, "commit", "block-commit", args,
            new BlockJobOptions { AutoFinalize = options.AutoFinalize, OnReady = options.OnReady, Kind = topDepth == 0 ? LabJobKind.ActiveCommit : LabJobKind.Commit },
            $"commit {disk}: {topLayer.Name} into {baseLayer.Name}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.CommitAsync"/>.</summary>
    public async Task<LiveChain> CommitAsync(string disk, string? top, string? @base, BlockCommitOptions? options, CancellationToken cancellationToken)
    {
        options ??= new BlockCommitOptions();
        await using var job = await StartCommitAsync(disk, top, @base, options with { OnReady = options.OnReady == ReadyAction.Wait ? ReadyAction.Complete : options.OnReady }, cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(block.JobTimeout, cancellationToken).ConfigureAwait(false);
        return await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.CommitIntoBackingAsync"/>.</summary>
    public async Task<BlockJobResult> CommitIntoBackingAsync(string disk, CancellationToken cancellationToken)
    {
        var chain = await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        if (chain.Count < 2)
        {
            throw new BlockOperationException($"cannot commit {disk}: {chain.Active.Name} has no backing file");
        }
        var backing = chain.Layers[1];
        Host.LabFiles.EnsureMayModify(backing.Filename, $"commit {disk} into {backing.Filename}", host: block.Host);
        await using var job = await StartCommitAsync(disk, top: null, @base: backing.Filename, options: null, cancellationToken).ConfigureAwait(false);
        await job.WaitForReadyAsync(block.JobTimeout, cancellationToken).ConfigureAwait(false);
        await job.CancelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return await job.WaitAsync(block.JobTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.StartStreamAsync"/>.</summary>
    public async Task<BlockJob> StartStreamAsync(string disk, string? @base, BlockStreamOptions? options, CancellationToken cancellationToken)
    {
        options ??= new BlockStreamOptions();
        var chain = await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        string? baseNode = null;
        if (@base is not null)
        {
            var baseLayer = chain.Find(@base) ?? throw NotInChain(@base, disk, chain);
            if (baseLayer == chain.Active)
            {
                throw new BlockOperationException($"cannot stream {disk} down to its active layer {baseLayer.Name}");
            }
            baseNode = baseLayer.NodeName;
        }
        var id = options.JobId ?? BlockJob.NewId("stream-");
        var args = new BlockStreamArguments(id, chain.Active.NodeName, AutoFinalize: options.AutoFinalize)
        {
            BaseNode = baseNode,
            Speed = options.Speed,
            OnError = Policy(options.OnError),
        };
        return await StartJobAsync(disk, id, "stream", "block-stream", args, new BlockJobOptions { AutoFinalize = options.AutoFinalize },
            $"stream {disk}" + (@base is null ? " (full)" : $" down to {@base}"), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.StreamAsync"/>.</summary>
    public async Task<LiveChain> StreamAsync(string disk, string? @base, BlockStreamOptions? options, CancellationToken cancellationToken)
    {
        await using var job = await StartStreamAsync(disk, @base, options, cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(block.JobTimeout, cancellationToken).ConfigureAwait(false);
        return await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.StartMirrorAsync"/>; what is sent is <see cref="MirrorStart.QmpAsync"/>'s.</summary>
    public async Task<BlockJob> StartMirrorAsync(string disk, MirrorTarget target, MirrorOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new MirrorOptions();
        var chain = await block.Chains.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var id = options.JobId ?? BlockJob.NewId("mirror-");
        var start = await MirrorStart.QmpAsync(block.Host, disk, chain, target, options, id, cancellationToken).ConfigureAwait(false);
        return await StartJobAsync(disk, id, "mirror", start.Command, start.Arguments, new BlockJobOptions { AutoFinalize = options.AutoFinalize, OnReady = options.OnReady },
            start.Describe, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.QueryJobsAsync"/>.</summary>
    public async Task<IReadOnlyList<JsonObject>> QueryJobsAsync(CancellationToken cancellationToken) =>
        (await block.Qmp.ExecuteAsync("query-jobs", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? []).OfType<JsonObject>().ToArray();

    /// <summary>
    /// Starts a job on <paramref name="disk"/>'s chain. The remembered chain is forgotten now (the job may change
    /// it as soon as it runs) and again when the job concludes (a pivot, the end of a commit or stream), on the
    /// job's pump before its completion is signalled, so an awaiter of the job never reads the old view.
    /// </summary>
    private async Task<BlockJob> StartJobAsync(string disk, string id, string type, string command, object arguments, BlockJobOptions jobOptions, string describe, CancellationToken cancellationToken)
    {
        var views = block.Views;
        views.Forget(disk);
        var entry = LabJournal.Current.Begin("block", describe);
        try
        {
            var job = await BlockJob.StartAsync(block.Qmp, id, type, command, QmpJson.Args(arguments),
                jobOptions with { Concluding = () => views.Forget(disk), Disk = disk }, cancellationToken: cancellationToken).ConfigureAwait(false);
            entry.Complete($"job {id} started");
            return job;
        }
        catch (QmpErrorException e)
        {
            entry.Fail(e.Message);
            throw QmpErrorTranslation.Translate(e);
        }
    }

    private static UnknownBlockNodeException NotInChain(string name, string disk, LiveChain chain) =>
        new(name, $"in the chain of {disk} ({chain.ToText()})");

    private static string? Policy(BlockErrorPolicy? p) => p?.ToString().ToLowerInvariant();

    /// <summary><c>block-commit</c>'s arguments (jobs are dismissed by the lab, so <c>auto-dismiss</c> is off).</summary>
    private sealed record BlockCommitArguments(string JobId, string Device, string TopNode, string BaseNode, bool AutoFinalize)
    {
        public bool AutoDismiss => false;
        public long? Speed { get; init; }
        public string? BackingFile { get; init; }
        public string? OnError { get; init; }
    }

    /// <summary><c>block-stream</c>'s arguments.</summary>
    private sealed record BlockStreamArguments(string JobId, string Device, bool AutoFinalize)
    {
        public bool AutoDismiss => false;
        public string? BaseNode { get; init; }
        public long? Speed { get; init; }
        public string? OnError { get; init; }
    }
}
