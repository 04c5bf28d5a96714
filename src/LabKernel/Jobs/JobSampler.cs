using LabKernel.Host;

namespace LabKernel.Jobs;

/// <summary>
/// A job's progress sampled in the background (<see cref="BlockJob.SampleEveryAsync"/>) for a measurement: every
/// sample is kept for plots, and a caller can wait until a sample satisfies a condition (a quarter copied, moving
/// again) instead of sleeping. Sampling ends by itself when the job concludes.
/// </summary>
public sealed class JobSampler : IAsyncDisposable
{
    private readonly List<BlockJobProgress> _samples = [];
    private readonly List<(Func<BlockJobProgress, bool> Condition, TaskCompletionSource<BlockJobProgress> Tcs)> _waiters = [];
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;
    private BlockJobProgress _latest;
    private bool _ended;

    /// <summary>Starts reading <paramref name="source"/>; <paramref name="initial"/> is the latest progress until the first sample.</summary>
    public JobSampler(Func<CancellationToken, IAsyncEnumerable<BlockJobProgress>> source, BlockJobProgress initial)
    {
        ArgumentNullException.ThrowIfNull(source);
        _latest = initial;
        _pump = Task.Run(() => PumpAsync(source));
    }

    /// <summary>Samples <paramref name="job"/> every <paramref name="interval"/> until it concludes.</summary>
    public static JobSampler Start(BlockJob job, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(job);
        return new JobSampler(ct => job.SampleEveryAsync(interval, ct), job.Last);
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
    /// returns it. Throws a <see cref="LabTimeoutException"/> naming <paramref name="awaited"/> after
    /// <paramref name="limit"/>, and a <see cref="LabException"/> when sampling ends first (the job concluded).
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
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
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
