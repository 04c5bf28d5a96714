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
    /// <summary>
    /// When the server's process had exited (<see cref="CutAt"/> is when it was told to stop): until then it still
    /// answers the requests in flight, and over SSH on a busy host that took longer than <see cref="OutageProgress.Settle"/>
    /// (a rehearsal saw 16 MiB land after the settling time and refute "offset flat").
    /// </summary>
    public DateTimeOffset GoneAt { get; init; }

    /// <summary>
    /// The job's offset while the server was gone and whether it moved again before the speed limit was lifted (see
    /// <see cref="OutageProgress.Of"/>): the lift comes when it was seen moving or when <see cref="OutagePlan.MovingLimit"/>
    /// passed, so a job that only moved later did not move again in time.
    /// </summary>
    public OutageProgress Progress => OutageProgress.Of(Samples, GoneAt == default ? CutAt : GoneAt, BackAt, OffsetAtCut, movingUntil: LiftedAt);

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
    /// <summary>How long after the server is gone samples count as "during": a sample already asked for may still answer.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(0.5);

    /// <summary>At least two samples during the outage, all at the same offset.</summary>
    public bool StoodStill => SamplesDuring >= 2 && MinOffset == MaxOffset;

    /// <summary>
    /// Samples from <see cref="Settle"/> after <paramref name="cutAt"/> to <paramref name="backAt"/> are the
    /// outage; the job moves again at the first later sample beyond the last outage offset (or beyond
    /// <paramref name="offsetAtCut"/> when no sample fell in the outage), taken no later than
    /// <paramref name="movingUntil"/> when given (when the wait for it ended).
    /// </summary>
    public static OutageProgress Of(IReadOnlyList<BlockJobProgress> samples, DateTimeOffset cutAt, DateTimeOffset backAt, long offsetAtCut, DateTimeOffset? movingUntil = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var during = samples.Where(s => s.At >= cutAt + Settle && s.At <= backAt).ToList();
        var stillAt = during.Count > 0 ? during[^1].Offset : offsetAtCut;
        var moving = samples.FirstOrDefault(s => s.At > backAt && s.At <= (movingUntil ?? DateTimeOffset.MaxValue) && s.Offset > stillAt);
        return during.Count == 0
            ? new OutageProgress(0, offsetAtCut, offsetAtCut, moving?.At)
            : new OutageProgress(during.Count, during.Min(s => s.Offset), during.Max(s => s.Offset), moving?.At);
    }

    public override string ToString() => SamplesDuring == 0
        ? "no samples in the outage"
        : $"{SamplesDuring} samples, offset {MinOffset / 1048576.0:0.0}..{MaxOffset / 1048576.0:0.0} MiB";
}

/// <summary>
/// A mirror onto storage that goes away and comes back, one step per call in the order notebook 03 shows them
/// (<see cref="BlockLayer.StartMirrorOntoNbdAsync"/>): the target is served over NBD by a separate
/// <c>qemu-storage-daemon</c> (the document's NFS server), reached through an <c>nbd</c> node whose requests wait for
/// the server longer than the outage can last; the job's offset is sampled from the start (a measurement). Disposing
/// abandons a job still running, deletes the node and stops the daemon.
/// </summary>
public sealed class MirrorOutage : IAsyncDisposable
{
    private const string NodeName = "nbd-outage-target";

    private readonly BlockLayer _block;
    private readonly TimeProvider _time;
    private readonly OutagePlan _plan;
    private readonly TimeSpan _limit;
    private readonly NbdExport _export;
    private readonly Host.ILabHost _host;
    private readonly string _sockets;
    private readonly List<string> _looks = [];
    private BlockJob? _job;
    private JobSampler? _sampler;
    private Task<DateTimeOffset>? _work;
    private long _offsetAtRestart;
    private BlockJobResult? _result;
    private DateTimeOffset _cutAt, _goneAt, _backAt, _liftedAt, _readyAt, _workDoneAt;
    private long _offsetAtCut;
    private bool _workDoneInOutage;

    private MirrorOutage(BlockLayer block, TimeProvider time, OutagePlan plan, NbdExport export, Host.ILabHost host, string sockets)
    {
        _block = block;
        _time = time;
        _plan = plan;
        _limit = plan.Timeout ?? block.JobTimeout;
        _export = export;
        _host = host;
        _sockets = sockets;
    }

    /// <summary>When the mirror started.</summary>
    public DateTimeOffset Started { get; private set; }

    /// <summary>The mirror job (<c>blockdev-mirror</c> onto the NBD node).</summary>
    public BlockJob Job => _job ?? throw new InvalidOperationException("the mirror has not started");

    internal static async Task<MirrorOutage> StartAsync(BlockLayer block, TimeProvider time, string disk, string target, OutagePlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
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
        var outage = new MirrorOutage(block, time, plan, export, host, sockets);
        try
        {
            // Requests wait for the server longer than the outage can last, so the job survives it.
            await block.AddNbdNodeAsync(export, NodeName, plan.Outage + plan.WorkLimit + TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            outage.Started = time.GetUtcNow();
            outage._job = await block.StartMirrorAsync(disk, new MirrorTarget.Node(NodeName),
                new MirrorOptions { Sync = MirrorSync.Full, Speed = plan.Speed, CopyMode = plan.CopyMode }, cancellationToken).ConfigureAwait(false);
            outage._sampler = JobSampler.Start(outage._job, plan.SampleEvery);
            return outage;
        }
        catch
        {
            await outage.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Waits until part of the disk is copied (<see cref="OutagePlan.CutAtFraction"/> or <see cref="OutagePlan.CutAtMostBytes"/>).</summary>
    public async Task<BlockJobProgress> WaitPartWayAsync(CancellationToken cancellationToken = default)
    {
        var at = await Sampler.WaitForAsync(s => s.Length > 0 && s.Offset >= Math.Min((long)(s.Length * _plan.CutAtFraction), _plan.CutAtMostBytes),
            _limit, "the mirror to copy the part before the cut", cancellationToken).ConfigureAwait(false);
        _offsetAtCut = at.Offset;
        return at;
    }

    /// <summary>Stops the storage: SIGTERM to the NBD server, as <c>service nfs stop</c>.</summary>
    public async Task StopStorageAsync(CancellationToken cancellationToken = default)
    {
        _cutAt = _time.GetUtcNow();
        // StopAsync returns once the server's process has exited, here or on the image's host.
        await _export.StopAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        _goneAt = _time.GetUtcNow();
    }

    /// <summary>Starts <paramref name="work"/> (the guest's workload) now, during the outage; its end is timed.</summary>
    public Task<T> RunDuringOutage<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        var run = Task.Run(() => work(cancellationToken), cancellationToken);
        _work = run.ContinueWith(_ => _time.GetUtcNow(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return run;
    }

    /// <summary>
    /// HMP <c>info block-jobs</c>, <see cref="OutagePlan.MonitorLooks"/> times spread over <see cref="OutagePlan.Outage"/>
    /// (a measurement schedule), until the outage's time is up; each look prefixed with its time since the cut.
    /// </summary>
    public async Task<IReadOnlyList<string>> LookAtJobsAsync(CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < _plan.MonitorLooks; i++)
        {
            var jobs = (await _block.Qmp.HumanMonitorCommandAsync("info block-jobs", cancellationToken: cancellationToken).ConfigureAwait(false)).Trim();
            _looks.Add($"+{(_time.GetUtcNow() - _cutAt).TotalSeconds:0.0} s: {jobs}");
            await Task.Delay(_plan.Outage / _plan.MonitorLooks, _time, cancellationToken).ConfigureAwait(false);
        }
        var left = _cutAt + _plan.Outage - _time.GetUtcNow();
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, _time, cancellationToken).ConfigureAwait(false);
        }
        return _looks;
    }

    /// <summary>
    /// Keeps the storage away until the work started by <see cref="RunDuringOutage"/> has ended, at most
    /// <see cref="OutagePlan.WorkLimit"/>: if the guest's I/O hung on the dead target, the work would not end while
    /// the server is down. Returns whether it ended in the outage.
    /// </summary>
    public async Task<bool> KeepAwayUntilWorkEndsAsync(CancellationToken cancellationToken = default)
    {
        var work = _work ?? throw new InvalidOperationException("no work runs during the outage (RunDuringOutage)");
        _workDoneInOutage = await Task.WhenAny(work, Task.Delay(_plan.WorkLimit, _time, cancellationToken)).ConfigureAwait(false) == work;
        return _workDoneInOutage;
    }

    /// <summary>Starts the storage again on the same socket, as <c>service nfs start</c>.</summary>
    public async Task StartStorageAsync(CancellationToken cancellationToken = default)
    {
        await _export.StartAsync(cancellationToken).ConfigureAwait(false);
        _backAt = _time.GetUtcNow();
        _offsetAtRestart = Sampler.Latest.Offset;
    }

    /// <summary>
    /// Waits for <see cref="OutagePlan.MovingSamples"/> samples past the restart's offset, at most
    /// <see cref="OutagePlan.MovingLimit"/> (the findings say when it never moved; the job still has to end), then lifts
    /// the speed limit for the rest (mostly zeroes). Returns whether it was seen moving.
    /// </summary>
    public async Task<bool> WaitMovingAgainThenLiftSpeedAsync(CancellationToken cancellationToken = default)
    {
        var moving = 0;
        var seen = true;
        try
        {
            // The condition sees each sample once: the latest when asked, then every new one.
            await Sampler.WaitForAsync(s => s.At > _backAt && s.Offset > _offsetAtRestart && ++moving >= _plan.MovingSamples,
                _plan.MovingLimit, "the mirror to move again after the restart", cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            seen = false;
        }
        _liftedAt = _time.GetUtcNow();
        await Job.SetSpeedAsync(0, cancellationToken).ConfigureAwait(false);
        return seen;
    }

    /// <summary>Waits for READY (<c>BLOCK_JOB_READY</c>).</summary>
    public async Task WaitForReadyAsync(CancellationToken cancellationToken = default)
    {
        await Job.WaitForReadyAsync(_limit, cancellationToken).ConfigureAwait(false);
        _readyAt = _time.GetUtcNow();
    }

    /// <summary>Cancels the job at READY (the target is a copy, the disk stays) and waits for it to end.</summary>
    public async Task<BlockJobResult> CancelAsync(CancellationToken cancellationToken = default)
    {
        await Job.CancelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        _result = await Job.WaitAsync(_limit, cancellationToken).ConfigureAwait(false);
        await Sampler.DisposeAsync().ConfigureAwait(false);
        if (_work is not null)
        {
            _workDoneAt = await _work.ConfigureAwait(false);
        }
        return _result;
    }

    /// <summary>What happened, once cancelled (<see cref="CancelAsync"/>).</summary>
    public OutageRun Run => _result is null
        ? throw new InvalidOperationException("the mirror has not ended yet (CancelAsync)")
        : new OutageRun(_result, Sampler.Samples, Started, _cutAt, _offsetAtCut, _backAt, _liftedAt, _readyAt, _looks, _workDoneInOutage, _workDoneAt) { GoneAt = _goneAt };

    private JobSampler Sampler => _sampler ?? throw new InvalidOperationException("the mirror has not started");

    public async ValueTask DisposeAsync()
    {
        if (_job is not null)
        {
            if (!_job.Completion.IsCompleted)
            {
                // Leave no job behind in QEMU: it would keep the target node (and the disk) busy.
                await DrivenJobs.AbandonAsync(_job).ConfigureAwait(false);
            }
            if (_sampler is not null)
            {
                await _sampler.DisposeAsync().ConfigureAwait(false);
            }
            await _job.DisposeAsync().ConfigureAwait(false);
        }
        await BlockLayer.TryAsync(() => _block.RemoveNodeAsync(NodeName, CancellationToken.None)).ConfigureAwait(false);
        await _export.DisposeAsync().ConfigureAwait(false);
        await DeleteSocketsAsync(_host, _sockets).ConfigureAwait(false);
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

    /// <summary>Every step in order, the VM paused at READY when the plan says so (<see cref="BlockLayer.MirrorThroughOutageAsync"/>).</summary>
    internal static async Task<(OutageRun Run, T Work)> RunAsync<T>(BlockLayer block, TimeProvider time, string disk, string target, OutagePlan plan, Func<CancellationToken, Task<T>> duringOutage, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(duringOutage);
        await using var outage = await StartAsync(block, time, disk, target, plan, cancellationToken).ConfigureAwait(false);
        await outage.WaitPartWayAsync(cancellationToken).ConfigureAwait(false);
        await outage.StopStorageAsync(cancellationToken).ConfigureAwait(false);
        var work = outage.RunDuringOutage(duringOutage, cancellationToken);
        await outage.LookAtJobsAsync(cancellationToken).ConfigureAwait(false);
        await outage.KeepAwayUntilWorkEndsAsync(cancellationToken).ConfigureAwait(false);
        await outage.StartStorageAsync(cancellationToken).ConfigureAwait(false);
        var value = await work.ConfigureAwait(false);
        await outage.WaitMovingAgainThenLiftSpeedAsync(cancellationToken).ConfigureAwait(false);
        await outage.WaitForReadyAsync(cancellationToken).ConfigureAwait(false);
        if (plan.PauseGuestAtReady)
        {
            await block.Qmp.HumanMonitorCommandAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        await outage.CancelAsync(cancellationToken).ConfigureAwait(false);
        return (outage.Run, value);
    }
}
