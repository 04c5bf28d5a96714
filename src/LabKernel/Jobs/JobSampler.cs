using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using LabKernel.Host;
using LabKernel.Qmp;

namespace LabKernel.Jobs;

/// <summary>
/// A job's progress sampled in the background (<see cref="BlockJob.SampleEveryAsync"/>) for a measurement: every
/// sample is kept for plots, and a caller can wait until a sample satisfies a condition (a quarter copied, moving
/// again) instead of sleeping. Sampling ends by itself when the job concludes.
/// Also where a QEMU job's sample is read (<see cref="ReadAsync"/>, for <see cref="BlockJob.SampleAsync"/> and the
/// samples its event pump takes) and paced (<see cref="EveryAsync"/>).
/// </summary>
public sealed class JobSampler : IAsyncDisposable
{
    private readonly List<BlockJobProgress> _samples = [];
    private readonly List<(Func<BlockJobProgress, bool> Condition, TaskCompletionSource<BlockJobProgress> Tcs)> _waiters = [];
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;
    private readonly TimeProvider _time;
    private BlockJobProgress _latest;
    private bool _ended;

    /// <summary>
    /// Starts reading <paramref name="source"/>; <paramref name="initial"/> is the latest progress until the first
    /// sample. <see cref="WaitForAsync"/>'s limits run on <paramref name="time"/> (default the system clock).
    /// </summary>
    public JobSampler(Func<CancellationToken, IAsyncEnumerable<BlockJobProgress>> source, BlockJobProgress initial, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _latest = initial;
        _time = time ?? TimeProvider.System;
        _pump = Task.Run(() => PumpAsync(source));
    }

    /// <summary>Samples <paramref name="job"/> every <paramref name="interval"/> until it concludes, on the job's clock.</summary>
    public static JobSampler Start(BlockJob job, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(job);
        return new JobSampler(ct => job.SampleEveryAsync(interval, ct), job.Last, job.Time);
    }

    /// <summary>Every sample so far, oldest first.</summary>
    public IReadOnlyList<BlockJobProgress> Samples
    {
        get
        {
            lock (_gate)
            {
                return _samples.ToArray();
            }
        }
    }

    /// <summary>The newest sample (or the job's progress when sampling started).</summary>
    public BlockJobProgress Latest
    {
        get
        {
            lock (_gate)
            {
                return _latest;
            }
        }
    }

    /// <summary>
    /// Waits until the latest sample, or one taken after the call, satisfies <paramref name="condition"/>, and
    /// returns it. Throws a <see cref="LabTimeoutException"/> naming <paramref name="awaited"/> and the last sample
    /// after <paramref name="limit"/> (on the sampler's clock), and a <see cref="LabException"/> when sampling ends
    /// first (the job concluded).
    /// </summary>
    public async Task<BlockJobProgress> WaitForAsync(Func<BlockJobProgress, bool> condition, TimeSpan limit, string awaited, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var tcs = new TaskCompletionSource<BlockJobProgress>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (condition(_latest))
            {
                return _latest;
            }
            if (_ended)
            {
                throw new LabException($"the job's sampling ended before {awaited} (last: {_latest})");
            }
            _waiters.Add((condition, tcs));
        }
        return await Poll.ForAsync(tcs.Task, awaited, limit, () => $"last sample {Latest}", () =>
        {
            lock (_gate)
            {
                _waiters.RemoveAll(w => w.Tcs == tcs);
            }
        }, _time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops sampling (at once if the job still runs) and waits for the sampler to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_pump.IsCompleted)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        await _pump.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>
    /// One sample of the job read from QEMU now: <c>query-jobs</c> (state, current/total progress) and
    /// <c>query-block-jobs</c> (offset, len, io-status, preferred where QEMU lists the job there), stamped on
    /// <paramref name="time"/>'s clock. Null when QEMU no longer lists the job or the connection closed.
    /// </summary>
    internal static async Task<BlockJobProgress?> ReadAsync(JobCommands commands, string id, string trigger, TimeProvider time, CancellationToken cancellationToken)
    {
        JsonObject? job;
        JsonObject? block;
        try
        {
            job = await commands.QueryJobAsync(cancellationToken).ConfigureAwait(false);
            block = await commands.QueryBlockJobAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (QmpDisconnectedException)
        {
            return null;
        }
        if (job is null)
        {
            return null;
        }
        var offset = block?["offset"]?.GetValue<long>() ?? job["current-progress"]?.GetValue<long>() ?? 0;
        var length = block?["len"]?.GetValue<long>() ?? job["total-progress"]?.GetValue<long>() ?? 0;
        var status = JobStatusText.Parse(job["status"]?.GetValue<string>());
        var io = block?["io-status"]?.GetValue<string>();
        return new BlockJobProgress(id, status, offset, length, time.GetUtcNow(), io, trigger);
    }

    /// <summary>
    /// Takes a <paramref name="sample"/> every <paramref name="interval"/> on <paramref name="time"/>'s clock until
    /// <paramref name="completion"/> ends (a pending tick does not hold it up) or a sample cannot be taken, then the
    /// <paramref name="last"/> progress once more. The pace of a measurement, not a limit: nothing here times out.
    /// </summary>
    internal static async IAsyncEnumerable<BlockJobProgress> EveryAsync(
        Func<CancellationToken, Task<BlockJobProgress?>> sample,
        Task completion,
        Func<BlockJobProgress> last,
        TimeSpan interval,
        TimeProvider time,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var timer = new PeriodicTimer(interval, time);
        while (!completion.IsCompleted)
        {
            var s = await sample(cancellationToken).ConfigureAwait(false);
            if (s is null)
            {
                break;
            }
            yield return s;
            var tick = timer.WaitForNextTickAsync(cancellationToken).AsTask();
            await Task.WhenAny(tick, completion).ConfigureAwait(false);
        }
        yield return last();
    }

    private async Task PumpAsync(Func<CancellationToken, IAsyncEnumerable<BlockJobProgress>> source)
    {
        try
        {
            await foreach (var s in source(_stop.Token).WithCancellation(_stop.Token).ConfigureAwait(false))
            {
                Add(s);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (LabException)
        {
            // The connection went away: the samples so far stand; waiters learn that sampling ended.
        }
        finally
        {
            End();
        }
    }

    private void Add(BlockJobProgress sample)
    {
        List<(TaskCompletionSource<BlockJobProgress> Tcs, BlockJobProgress Sample)> wake = [];
        lock (_gate)
        {
            _samples.Add(sample);
            _latest = sample;
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition(sample))
                {
                    wake.Add((_waiters[i].Tcs, sample));
                    _waiters.RemoveAt(i);
                }
            }
        }
        foreach (var (tcs, s) in wake)
        {
            tcs.TrySetResult(s);
        }
    }

    private void End()
    {
        List<TaskCompletionSource<BlockJobProgress>> waiters;
        BlockJobProgress last;
        lock (_gate)
        {
            _ended = true;
            waiters = _waiters.Select(w => w.Tcs).ToList();
            _waiters.Clear();
            last = _latest;
        }
        foreach (var w in waiters)
        {
            w.TrySetException(new LabException($"the job's sampling ended before the awaited progress (last: {last})"));
        }
    }
}
