using LabKernel.Jobs;

namespace LabKernel.Block;

/// <summary>
/// How <see cref="BlockLayer.MirrorAsync(string, MirrorTarget, MirrorOptions?, JobEnding?, CancellationToken)"/> ends
/// a job once it is READY: cancel (<c>block-job-cancel</c>: the
/// disk stays where it was and the target is a consistent copy) or complete (<c>job-complete</c>: the disk pivots),
/// optionally with the VM paused around it (HMP <c>stop</c> and <c>c</c>, as the documents do).
/// </summary>
public sealed record JobEnding
{
    /// <summary>Cancel at READY: the source stays active.</summary>
    public static JobEnding Cancel { get; } = new();

    /// <summary>Complete at READY: the disk pivots onto the target (mirror) or the base (active commit).</summary>
    public static JobEnding Complete { get; } = new() { Action = ReadyAction.Complete };

    /// <summary><see cref="ReadyAction.Cancel"/> or <see cref="ReadyAction.Complete"/>.</summary>
    public ReadyAction Action { get; init; } = ReadyAction.Cancel;

    /// <summary>Pause the VM (HMP <c>stop</c>) at READY, before the cancel or complete.</summary>
    public bool PauseGuest { get; init; }

    /// <summary>With <see cref="PauseGuest"/>: continue the VM (HMP <c>c</c>) once the job has ended; false leaves it paused.</summary>
    public bool ResumeGuest { get; init; } = true;

    /// <summary>Time limit for READY and for the conclusion, each; null: the block layer's <see cref="BlockLayer.JobTimeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>A mirror or active commit driven to its end by the block layer.</summary>
/// <param name="Result">How the job ended.</param>
/// <param name="Before">The disk's chain before the job.</param>
/// <param name="After">The disk's chain after it (and after the nodes a pivot left behind were closed).</param>
/// <param name="Released">The monitor-owned nodes of the images the disk left, closed after a pivot (<c>blockdev-del</c>).</param>
public sealed record BlockJobRun(BlockJobResult Result, LiveChain Before, LiveChain After, IReadOnlyList<string> Released)
{
    /// <summary>The job's progress when the work done while it copied ended (null without such work).</summary>
    public BlockJobProgress? AtWorkEnd { get; init; }

    /// <summary>HMP <c>info block-jobs</c> when that work ended (the documents' look at the job).</summary>
    public string? MonitorAtWorkEnd { get; init; }

    /// <summary>The work ended before the job was READY, i.e. while it was still copying.</summary>
    public bool WorkEndedWhileCopying => AtWorkEnd is { } p && !p.IsReady;

    /// <summary>See <see cref="JobEnds.StayedOn"/>, with the chain after the job.</summary>
    public bool StayedOn(string image) => Result.StayedOn(After, image);

    /// <summary>See <see cref="JobEnds.PivotedOnto"/>, with the chain after the job.</summary>
    public bool PivotedOnto(string image) => Result.PivotedOnto(After, image);
}

/// <summary>Where a mirror or active commit left the disk, judged from how it ended and the chain QEMU shows afterwards.</summary>
public static class JobEnds
{
    /// <summary>
    /// The job was cancelled and <paramref name="after"/> (the disk's chain read after it) is still on
    /// <paramref name="image"/>: a mirror cancelled at READY leaves the VM where it was.
    /// </summary>
    public static bool StayedOn(this BlockJobResult result, LiveChain after, string image)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(after);
        return result.Cancelled && after.Active.Filename == image;
    }

    /// <summary>The job completed and <paramref name="after"/> is on <paramref name="image"/> now (the mirror's target, or an active commit's base).</summary>
    public static bool PivotedOnto(this BlockJobResult result, LiveChain after, string image)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(after);
        return result.Completed && after.Active.Filename == image;
    }

    /// <summary>
    /// After a reboot inside the guest (a new boot id, which the reboot waits for), the disk is still on
    /// <paramref name="newest"/> and a file written before it reads back with the same SHA-256 (read from the disk: the
    /// new boot has no page cache). False when QEMU reopened another image or the file's bytes changed or vanished
    /// (<paramref name="sumAfter"/> empty). Notebook 03, experiment 5.
    /// </summary>
    public static bool StillOnAfterReboot(LiveChain afterReboot, string newest, string sumBefore, string sumAfter)
    {
        ArgumentNullException.ThrowIfNull(afterReboot);
        return afterReboot.Active.Filename == newest && sumBefore.Length > 0 && sumAfter == sumBefore;
    }

    /// <summary>
    /// The guest's write (with <c>conv=fsync</c> and a <c>sync</c>: on the disk, or an I/O error) exited 0 and the disk is
    /// on <paramref name="active"/>: the VM kept running and writing after its old images moved away. False for a
    /// failed write or a disk on another image. Notebook 03, experiment 6.
    /// </summary>
    public static bool KeptWriting(int writeExitCode, LiveChain after, string active)
    {
        ArgumentNullException.ThrowIfNull(after);
        return writeExitCode == 0 && after.Active.Filename == active;
    }
}

/// <summary>
/// Notebook 03's shallow mirror (<c>sync=top</c> onto an overlay sharing the backing file) against a full mirror of the
/// same disk: the shallow one copies only what the VM wrote on top, far less than the whole disk.
/// </summary>
public static class ShallowMirror
{
    /// <summary>The shallow job must copy under 1/<see cref="FullParts"/> of the bytes the full job copied.</summary>
    public const long FullParts = 4;

    /// <summary>
    /// Whether the shallow job's offset (bytes copied) times <see cref="FullParts"/> is below the full job's: false for
    /// a "shallow" mirror that copied the backing file's data too (a <c>sync=full</c> by mistake, or a target that does
    /// not share the backing file).
    /// </summary>
    public static bool CopiedOnlyTheTop(BlockJobResult shallow, BlockJobResult full)
    {
        ArgumentNullException.ThrowIfNull(shallow);
        ArgumentNullException.ThrowIfNull(full);
        return shallow.Offset * FullParts < full.Offset;
    }
}

/// <summary>
/// What <see cref="BlockLayer.HmpCommitOrByNodeAsync"/> did: the documents' HMP <c>commit</c> when every image it
/// would write is the lab's, else the same commit of the one disk by node (QMP <c>block-commit</c> cancelled at READY).
/// </summary>
/// <param name="Hmp">The HMP command sent, or null when it was refused.</param>
/// <param name="HmpRefused">Why HMP was not sent (it would write an image the lab did not make), or null.</param>
/// <param name="ByNode">The commit by node done instead, or null.</param>
/// <param name="From">The disk's active image (whose data was committed).</param>
/// <param name="Into">Its backing file (written).</param>
public sealed record CommitIntoBacking(HmpCommitResult? Hmp, string? HmpRefused, BlockJobResult? ByNode, string From, string Into)
{
    public bool SentHmp => Hmp is not null;

    /// <summary>HMP sent, or the commit by node copied everything (cancelled at READY, no error).</summary>
    public bool Worked => Hmp is not null || ByNode is { Cancelled: true, Errors.Count: 0 } j && j.Offset == j.Length;

    /// <summary>One line: what was sent and what it wrote.</summary>
    public string Summary => Hmp is not null
        ? $"sent '{Hmp.Command}', which wrote {string.Join(", ", Hmp.Written.Select(Path.GetFileName))} (all made by the lab)"
        : $"{(ByNode?.Offset ?? 0) / 1048576.0:0.0} MiB committed from {Path.GetFileName(From)} into {Path.GetFileName(Into)} by node";
}

/// <summary>
/// The block layer's jobs driven to their end in one call, the way the documents run them: start, optionally run
/// some work while the job copies (speed-limited), lift the limit, await READY (an event), cancel or complete,
/// close the nodes a pivot left behind.
/// </summary>
internal sealed class DrivenJobs(BlockLayer block)
{
    public async Task<(BlockJobRun Run, T Work)> RunAsync<T>(string disk, Func<Task<BlockJob>> start, bool speedLimited, JobEnding ending, Func<CancellationToken, Task<T>>? work, CancellationToken cancellationToken)
    {
        if (ending.Action == ReadyAction.Wait)
        {
            throw new LabUsageException("a driven job ends by Cancel or Complete, not Wait");
        }
        var limit = ending.Timeout ?? block.JobTimeout;
        var before = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        T value = default!;
        BlockJobProgress? atWorkEnd = null;
        string? monitorAtWorkEnd = null;
        BlockJobResult result;
        await using (var job = await start().ConfigureAwait(false))
        {
            try
            {
                if (work is not null)
                {
                    value = await work(cancellationToken).ConfigureAwait(false);
                    atWorkEnd = await job.SampleAsync(cancellationToken).ConfigureAwait(false);
                    monitorAtWorkEnd = (await block.Qmp.HumanMonitorCommandAsync("info block-jobs", cancellationToken: cancellationToken).ConfigureAwait(false)).Trim();
                }
                if (speedLimited)
                {
                    await job.SetSpeedAsync(0, cancellationToken).ConfigureAwait(false);
                }
                await job.WaitForReadyAsync(limit, cancellationToken).ConfigureAwait(false);
                if (ending.PauseGuest)
                {
                    await block.Qmp.HumanMonitorCommandAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                if (ending.Action == ReadyAction.Complete)
                {
                    await job.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await job.CancelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                result = await job.WaitAsync(limit, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!job.Completion.IsCompleted)
            {
                await AbandonAsync(job).ConfigureAwait(false);
                throw;
            }
        }
        // Nodes the monitor owns (-blockdev, as libvirt opens every layer) stay open after a pivot until deleted.
        var released = result.Completed ? await block.ReleaseNodesLeftBehindAsync(before, cancellationToken).ConfigureAwait(false) : [];
        if (ending.PauseGuest && ending.ResumeGuest)
        {
            await block.Qmp.HumanMonitorCommandAsync("c", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        var after = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        return (new BlockJobRun(result, before, after, released) { AtWorkEnd = atWorkEnd, MonitorAtWorkEnd = monitorAtWorkEnd }, value);
    }

    /// <summary>After a failure: <c>block-job-cancel force</c> and a short wait, so no job is left running in QEMU.</summary>
    internal static Task AbandonAsync(BlockJob job) => BlockLayer.TryAsync(async () =>
    {
        await job.CancelAsync(force: true, CancellationToken.None).ConfigureAwait(false);
        await job.WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None).ConfigureAwait(false);
    });

    public async Task<CommitIntoBacking> HmpCommitOrByNodeAsync(string disk, CancellationToken cancellationToken)
    {
        var chain = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        if (chain.Count < 2)
        {
            throw new BlockOperationException($"cannot commit {disk}: {chain.Active.Name} has no backing file");
        }
        var (from, into) = (chain.Active.Filename, chain.Layers[1].Filename);
        try
        {
            return new CommitIntoBacking(await block.HmpCommitAsync(disk, cancellationToken).ConfigureAwait(false), null, null, from, into);
        }
        catch (Host.ForeignImageException e)
        {
            return new CommitIntoBacking(null, e.Message, await block.CommitIntoBackingAsync(disk, cancellationToken).ConfigureAwait(false), from, into);
        }
    }
}
