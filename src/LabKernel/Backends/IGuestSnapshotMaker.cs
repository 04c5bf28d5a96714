namespace LabKernel.Backends;

/// <summary>
/// How one backend takes and reverts each <see cref="SnapshotKind"/>: QMP on QEMU, libvirt's snapshot API on
/// libvirt. <see cref="GuestSnapshots"/> measures around it (pauses, growth, files) the same way for both, and runs
/// the lab's own external revert where the backend has none of its own.
/// </summary>
public interface IGuestSnapshotMaker
{
    /// <summary>Whether the backend can take <paramref name="kind"/> (the live memory snapshot is libvirt's).</summary>
    bool Supports(SnapshotKind kind);

    /// <summary>
    /// Takes the snapshot: <paramref name="overlay"/> (external kinds) and <paramref name="memory"/> (kinds with
    /// memory) are new files the lab registered. Returns how, in the terms of the tool the documents use.
    /// </summary>
    Task<string> TakeAsync(string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts sampling whether the backend has the guest's CPUs stopped (libvirt's domain state: paused or running),
    /// for <see cref="SnapshotTaken.Suspended"/>; null where the backend is not asked (the pings are then the only
    /// measure). A sample reads the state as it is, so a slow answer delays a reading but never makes one up.
    /// </summary>
    SuspensionWatch? WatchSuspensions() => null;

    /// <summary>
    /// Reverts by the backend's own means, returning how; null where it has none, so the lab's external revert
    /// (a new overlay over the frozen layer, booted or restored) runs. A backend's refusal is its exception.
    /// </summary>
    Task<RevertDone?> RevertAsync(string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default);
}

/// <summary>The means by which a revert brought the guest back.</summary>
public enum RevertMethod
{
    /// <summary>QEMU's <c>snapshot-load</c> of an internal snapshot in the running guest (HMP <c>loadvm</c>).</summary>
    SnapshotLoad,

    /// <summary>libvirt's own revert (<c>virDomainRevertToSnapshot</c>, <c>virsh snapshot-revert</c>).</summary>
    LibvirtRevert,

    /// <summary>The saved memory loaded into a new QEMU (<c>-incoming</c>, then <c>cont</c>) on a new overlay over the frozen layer.</summary>
    MemoryRestored,

    /// <summary>The lab's external revert: a new overlay on the frozen layer, the guest booted on it (memory is not kept).</summary>
    ColdBootOnFrozenLayer,
}

/// <summary>How a revert was done: its <see cref="RevertMethod"/> and the same in the terms of the tools the documents use.</summary>
public sealed record RevertDone(RevertMethod Method, string Description)
{
    public override string ToString() => Description;
}

/// <summary>
/// Samples every 20 ms whether the guest is suspended (<c>isSuspended</c>, asked of the backend) and keeps each change
/// with the time its answer came, on <c>time</c>'s clock; <see cref="SuspendedWithin"/> adds up the suspended time of a
/// window. <see cref="StopAsync"/> takes one more sample after the window and ends the sampling.
/// </summary>
public sealed class SuspensionWatch : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    private readonly TimeProvider _time;
    private readonly List<(bool Suspended, DateTimeOffset At)> _changes = [];
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private volatile bool _stopping;

    public SuspensionWatch(Func<CancellationToken, Task<bool>> isSuspended, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(isSuspended);
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _loop = Task.Run(() => RunAsync(isSuspended, _abort.Token));
    }

    /// <summary>Now on the watch's clock.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>Waits for the first sample, so the watch covers what follows.</summary>
    public Task ReadyAsync(CancellationToken cancellationToken = default) =>
        Host.Poll.ForAsync(Task.WhenAny(_first.Task, _loop).Unwrap(), "the first reading of the guest's run state", TimeSpan.FromMinutes(2), cancellationToken: cancellationToken);

    private async Task RunAsync(Func<CancellationToken, Task<bool>> isSuspended, CancellationToken abort)
    {
        // A sampling clock, not a wait: the watch records the state as the backend answers.
        using var tick = new PeriodicTimer(Interval, _time);
        while (true)
        {
            var stopping = _stopping;
            bool suspended;
            try
            {
                suspended = await isSuspended(abort).ConfigureAwait(false);
            }
            catch (LabException)
            {
                // No reading this time (the backend busy or reconnecting): nothing is recorded for it.
                await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
                continue;
            }
            var at = _time.GetUtcNow();
            lock (_changes)
            {
                if (_changes.Count == 0 || _changes[^1].Suspended != suspended)
                {
                    _changes.Add((suspended, at));
                }
            }
            _first.TrySetResult();
            if (stopping)
            {
                return;
            }
            await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
        }
    }

    /// <summary>Takes one more sample (after the window) and ends the sampling.</summary>
    public Task StopAsync()
    {
        _stopping = true;
        return Host.Poll.ForAsync(_loop, "a reading of the guest's run state after the snapshot", TimeSpan.FromMinutes(2));
    }

    /// <summary>How long the samples showed the guest suspended between <paramref name="from"/> and <paramref name="to"/>.</summary>
    public TimeSpan SuspendedWithin(DateTimeOffset from, DateTimeOffset to)
    {
        (bool Suspended, DateTimeOffset At)[] changes;
        lock (_changes)
        {
            changes = [.. _changes];
        }
        return Total(changes, from, to);
    }

    /// <summary>
    /// The suspended time of <paramref name="changes"/> (state changes in order, each at the time it was first read)
    /// within the window: a suspension counts from its first reading to the first reading of the guest running again
    /// (or the window's end).
    /// </summary>
    public static TimeSpan Total(IReadOnlyList<(bool Suspended, DateTimeOffset At)> changes, DateTimeOffset from, DateTimeOffset to)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var total = TimeSpan.Zero;
        DateTimeOffset? since = null;
        foreach (var (suspended, at) in changes)
        {
            if (suspended)
            {
                since ??= at;
            }
            else if (since is { } s)
            {
                total += Overlap(s, at, from, to);
                since = null;
            }
        }
        if (since is { } open)
        {
            total += Overlap(open, to, from, to);
        }
        return total;
    }

    private static TimeSpan Overlap(DateTimeOffset a, DateTimeOffset b, DateTimeOffset from, DateTimeOffset to)
    {
        var start = a > from ? a : from;
        var end = b < to ? b : to;
        return end > start ? end - start : TimeSpan.Zero;
    }

    public void Dispose()
    {
        _abort.Cancel();
        _abort.Dispose();
    }
}
