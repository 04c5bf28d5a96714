using LabKernel.Images;
using LabKernel.Jobs;

namespace LabKernel.Block;

/// <summary>
/// A storage outage in the middle of a mirror (<see cref="BlockLayer.MirrorThroughOutageAsync"/>): the target is
/// served over NBD by a separate <c>qemu-storage-daemon</c>, which is stopped once part of the disk is copied and
/// started again after <see cref="Outage"/>.
/// </summary>
public sealed record OutagePlan
{
    /// <summary>How long the server stays away at least.</summary>
    public required TimeSpan Outage { get; init; }

    /// <summary>Bytes per second the mirror copies until it is seen moving again after the outage (then unlimited).</summary>
    public long? Speed { get; init; }

    /// <summary>The server is cut when this fraction of the job is copied ...</summary>
    public double CutAtFraction { get; init; } = 0.25;

    /// <summary>... or this many bytes, whichever comes first.</summary>
    public long CutAtMostBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>How often the job's offset is sampled (a measurement, not how the job is driven).</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How many times HMP <c>info block-jobs</c> is asked during the outage, spread over it.</summary>
    public int MonitorLooks { get; init; } = 3;

    /// <summary>The server stays away until the work done during the outage ends too, at most this much longer.</summary>
    public TimeSpan WorkLimit { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>After the restart, the speed limit is lifted once this many samples show the job moving again.</summary>
    public int MovingSamples { get; init; } = 4;

    /// <summary>How long to wait for the job to move again after the restart before lifting the limit anyway.</summary>
    public TimeSpan MovingLimit { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The mirror's <c>copy-mode</c>; null: background. With <see cref="MirrorCopyMode.WriteBlocking"/> each guest write
    /// waits for the target, so the guest's writes stop with the storage (what a synchronous replica does).
    /// </summary>
    public MirrorCopyMode? CopyMode { get; init; }

    /// <summary>Time limit for READY and for the conclusion; null: the block layer's <see cref="BlockLayer.JobTimeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Pause the VM (HMP <c>stop</c>) at READY, before the cancel, and leave it paused: the copy then equals the
    /// disk exactly (a running guest keeps writing after the cancel, into the disk only).
    /// </summary>
    public bool PauseGuestAtReady { get; init; }
}

/// <summary>What happened to a mirror through an outage (times on the host clock).</summary>
/// <param name="Result">How the job ended (cancelled at READY: the target is a copy, the disk stays).</param>
/// <param name="Samples">The job's sampled progress, oldest first.</param>
/// <param name="Started">When the mirror started.</param>
/// <param name="CutAt">When the server was stopped.</param>
/// <param name="OffsetAtCut">The job's offset then.</param>
/// <param name="BackAt">When the server was started again.</param>
/// <param name="LiftedAt">When the speed limit was lifted.</param>
/// <param name="ReadyAt">When the job was READY.</param>
/// <param name="MonitorDuringOutage">HMP <c>info block-jobs</c> during the outage, each prefixed with its time since the cut.</param>
/// <param name="WorkDoneInOutage">The work done during the outage had ended when the server was started again.</param>
/// <param name="WorkDoneAt">When that work ended.</param>
public sealed record OutageRun(
    BlockJobResult Result,
    IReadOnlyList<BlockJobProgress> Samples,
    DateTimeOffset Started,
    DateTimeOffset CutAt,
    long OffsetAtCut,
    DateTimeOffset BackAt,
    DateTimeOffset LiftedAt,
    DateTimeOffset ReadyAt,
    IReadOnlyList<string> MonitorDuringOutage,
    bool WorkDoneInOutage,
    DateTimeOffset WorkDoneAt)
{
    /// <summary>The job's offset during the outage and when it moved again (see <see cref="OutageProgress.Of"/>).</summary>
    public OutageProgress Progress => OutageProgress.Of(Samples, CutAt, BackAt, OffsetAtCut);

    /// <summary>Seconds since the mirror started, for plots.</summary>
    public double SecondsAt(DateTimeOffset at) => (at - Started).TotalSeconds;
}

/// <summary>The outage as the job's samples saw it.</summary>
/// <param name="SamplesDuring">Samples taken while the server was away (after a short settling time).</param>
/// <param name="MinOffset">Their lowest offset.</param>
/// <param name="MaxOffset">Their highest offset.</param>
/// <param name="MovingAgainAt">The first sample after the restart beyond the outage's last offset, or null.</param>
public sealed record OutageProgress(int SamplesDuring, long MinOffset, long MaxOffset, DateTimeOffset? MovingAgainAt)
{
    /// <summary>How long after the cut samples count as "during": requests in flight may still land.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(0.5);

    /// <summary>At least two samples during the outage, all at the same offset.</summary>
    public bool StoodStill => SamplesDuring >= 2 && MinOffset == MaxOffset;

    /// <summary>
    /// Samples from <see cref="Settle"/> after <paramref name="cutAt"/> to <paramref name="backAt"/> are the
    /// outage; the job moves again at the first later sample beyond the last outage offset (or beyond
    /// <paramref name="offsetAtCut"/> when no sample fell in the outage).
    /// </summary>
    public static OutageProgress Of(IReadOnlyList<BlockJobProgress> samples, DateTimeOffset cutAt, DateTimeOffset backAt, long offsetAtCut)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var during = samples.Where(s => s.At >= cutAt + Settle && s.At <= backAt).ToList();
        var stillAt = during.Count > 0 ? during[^1].Offset : offsetAtCut;
        var moving = samples.FirstOrDefault(s => s.At > backAt && s.Offset > stillAt);
        return during.Count == 0
            ? new OutageProgress(0, offsetAtCut, offsetAtCut, moving?.At)
            : new OutageProgress(during.Count, during.Min(s => s.Offset), during.Max(s => s.Offset), moving?.At);
    }

    public override string ToString() => SamplesDuring == 0
        ? "no samples in the outage"
        : $"{SamplesDuring} samples, offset {MinOffset / 1048576.0:0.0}..{MaxOffset / 1048576.0:0.0} MiB";
}

/// <summary>See <see cref="BlockLayer.MirrorThroughOutageAsync"/>.</summary>
internal sealed class NbdOutage(BlockLayer block, TimeProvider time)
{
    private const string NodeName = "nbd-outage-target";

    public async Task<(OutageRun Run, T Work)> RunAsync<T>(string disk, string target, OutagePlan plan, Func<CancellationToken, Task<T>> duringOutage, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(duringOutage);
        var limit = plan.Timeout ?? block.JobTimeout;
        var chain = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var host = block.Host;
        // From QEMU, not qemu-img: a layer whose header names its backing file otherwise than QEMU opened it (a relative
        // name, as a researcher's qemu-img create -b makes) has a json: filename qemu-img cannot open.
        var size = await block.Nodes.VirtualSizeAsync(chain.Active.NodeName, cancellationToken).ConfigureAwait(false);
        await block.QemuImg.CreateAsync(target, "qcow2", size, cancellationToken: cancellationToken).ConfigureAwait(false);
        // A unix socket's path is limited to 107 bytes (the run folder may be deeper): the socket goes in a private
        // (0700) runtime folder of its own, so no other user can reach the writable export. The daemon runs where the
        // VM's QEMU runs, on the image's host.
        var sockets = host.IsLocal
            ? Host.LabPaths.CreatePrivateRuntimeFolder("lab-nbd")
            : await host.CreateTempDirectoryAsync("lab-nbd-", "/tmp", cancellationToken).ConfigureAwait(false);
        NbdExport export;
        try
        {
            export = await NbdExport.StartAsync(target, Path.Combine(sockets, "nbd.sock"), "mirror", cancellationToken: cancellationToken, host: host).ConfigureAwait(false);
        }
        catch
        {
            await DeleteSocketsAsync(host, sockets).ConfigureAwait(false);
            throw;
        }
        try
        {
            // Requests wait for the server longer than the outage can last, so the job survives it.
            await block.AddNbdNodeAsync(export, NodeName, plan.Outage + plan.WorkLimit + TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            try
            {
                return await MirrorAsync(disk, export, plan, limit, duringOutage, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await BlockLayer.TryAsync(() => block.RemoveNodeAsync(NodeName, CancellationToken.None)).ConfigureAwait(false);
            }
        }
        finally
        {
            await export.DisposeAsync().ConfigureAwait(false);
            await DeleteSocketsAsync(host, sockets).ConfigureAwait(false);
        }
    }

    private static async Task DeleteSocketsAsync(Host.ILabHost host, string sockets)
    {
        if (host.IsLocal)
        {
            Host.LabPaths.TryDeleteFolder(sockets);
        }
        else
        {
            await BlockLayer.TryAsync(() => host.DeleteDirectoryAsync(sockets, recursive: true, CancellationToken.None)).ConfigureAwait(false);
        }
    }

    private async Task<(OutageRun, T)> MirrorAsync<T>(string disk, NbdExport export, OutagePlan plan, TimeSpan limit, Func<CancellationToken, Task<T>> duringOutage, CancellationToken cancellationToken)
    {
        await using var job = await block.StartMirrorAsync(disk, new MirrorTarget.Node(NodeName), new MirrorOptions { Sync = MirrorSync.Full, Speed = plan.Speed, CopyMode = plan.CopyMode }, cancellationToken).ConfigureAwait(false);
        try
        {
            return await DriveAsync(job, export, plan, limit, duringOutage, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!job.Completion.IsCompleted)
        {
            // Leave no job behind in QEMU: it would keep the target node (and the disk) busy.
            await DrivenJobs.AbandonAsync(job).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<(OutageRun, T)> DriveAsync<T>(BlockJob job, NbdExport export, OutagePlan plan, TimeSpan limit, Func<CancellationToken, Task<T>> duringOutage, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        await using var sampler = JobSampler.Start(job, plan.SampleEvery);
        var atCut = await sampler.WaitForAsync(s => s.Length > 0 && s.Offset >= Math.Min((long)(s.Length * plan.CutAtFraction), plan.CutAtMostBytes),
            limit, "the mirror to copy the part before the cut", cancellationToken).ConfigureAwait(false);
        var cutAt = time.GetUtcNow();
        await export.StopAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        // The work runs beside the looks at the monitor below.
        var work = Task.Run(() => RunTimedAsync(duringOutage, cancellationToken), cancellationToken);
        var looks = new List<string>();
        for (var i = 0; i < plan.MonitorLooks; i++)
        {
            var jobs = (await block.Qmp.HumanMonitorCommandAsync("info block-jobs", cancellationToken: cancellationToken).ConfigureAwait(false)).Trim();
            looks.Add($"+{(time.GetUtcNow() - cutAt).TotalSeconds:0.0} s: {jobs}");
            // The looks are spread over the outage: a measurement schedule, not a wait for something.
            await Task.Delay(plan.Outage / plan.MonitorLooks, time, cancellationToken).ConfigureAwait(false);
        }
        var left = cutAt + plan.Outage - time.GetUtcNow();
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, time, cancellationToken).ConfigureAwait(false);
        }
        // The storage stays away until the guest's work is done too: if guest I/O hung on the dead target, the
        // work would not end while the server is down.
        var workDoneInOutage = await Task.WhenAny(work, Task.Delay(plan.WorkLimit, time, cancellationToken)).ConfigureAwait(false) == work;
        await export.StartAsync(cancellationToken).ConfigureAwait(false);
        var backAt = time.GetUtcNow();
        var offsetAtRestart = sampler.Latest.Offset;
        var (value, workDoneAt) = await work.ConfigureAwait(false);
        // Let the job be seen moving again at the limited rate, then lift the limit for the rest (mostly zeroes).
        // The condition sees each sample once: the latest when asked, then every new one.
        var moving = 0;
        try
        {
            await sampler.WaitForAsync(s => s.At > backAt && s.Offset > offsetAtRestart && ++moving >= plan.MovingSamples,
                plan.MovingLimit, "the mirror to move again after the restart", cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            // The findings say so (no sample moving again); the job still has to end.
        }
        var liftedAt = time.GetUtcNow();
        await job.SetSpeedAsync(0, cancellationToken).ConfigureAwait(false);
        await job.WaitForReadyAsync(limit, cancellationToken).ConfigureAwait(false);
        var readyAt = time.GetUtcNow();
        if (plan.PauseGuestAtReady)
        {
            await block.Qmp.HumanMonitorCommandAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        await job.CancelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var result = await job.WaitAsync(limit, cancellationToken).ConfigureAwait(false);
        await sampler.DisposeAsync().ConfigureAwait(false);
        return (new OutageRun(result, sampler.Samples, started, cutAt, atCut.Offset, backAt, liftedAt, readyAt, looks, workDoneInOutage, workDoneAt), value);
    }

    private async Task<(T Value, DateTimeOffset DoneAt)> RunTimedAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        var value = await work(cancellationToken).ConfigureAwait(false);
        return (value, time.GetUtcNow());
    }
}
