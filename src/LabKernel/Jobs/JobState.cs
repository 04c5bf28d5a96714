using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LabKernel.Jobs;

/// <summary>
/// What the lab knows of one QEMU job and who waits on it: the last progress (<see cref="Last"/>, from events and
/// samples), the <c>BLOCK_JOB_ERROR</c>s seen, the watchers of <see cref="BlockJob.WatchAsync"/>, the status waits,
/// READY and the end. The event pump (<see cref="JobEventPump"/>) changes it, the job's callers read and await it;
/// one lock guards it, and every waiter is woken outside that lock.
/// </summary>
internal sealed class JobState
{
    private readonly string _id;
    private readonly string _type;
    private readonly TimeProvider _time;
    private readonly Action? _concluding;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<BlockJobResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Channel<BlockJobProgress>> _watchers = [];
    private readonly List<(Func<JobStatus, IReadOnlyList<BlockJobError>, bool> Predicate, TaskCompletionSource<JobStatus> Tcs)> _statusWaiters = [];
    private readonly List<BlockJobError> _errors = [];
    private readonly object _gate = new();
    private BlockJobProgress _last;
    private int _concluded;

    /// <param name="id">The job id.</param>
    /// <param name="type">QEMU's job type, for messages.</param>
    /// <param name="time">The clock progress is stamped with.</param>
    /// <param name="concluding"><see cref="BlockJobOptions.Concluding"/>: run once, before anyone waiting learns the end.</param>
    public JobState(string id, string type, TimeProvider time, Action? concluding)
    {
        _id = id;
        _type = type;
        _time = time;
        _concluding = concluding;
        _last = new BlockJobProgress(id, JobStatus.Created, 0, 0, time.GetUtcNow(), null, "start");
        // A READY wait nobody made must not surface as an unobserved exception when the job fails.
        _ = _ready.Task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>The last progress known (from an event or a sample).</summary>
    public BlockJobProgress Last
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>BLOCK_JOB_ERROR events seen so far.</summary>
    public IReadOnlyList<BlockJobError> Errors
    {
        get
        {
            lock (_gate)
            {
                return _errors.ToArray();
            }
        }
    }

    /// <summary>True once the job reached READY; false when it concluded without; faulted with the job's error.</summary>
    public Task<bool> Ready => _ready.Task;

    /// <summary>The job's end: its result, or its error.</summary>
    public Task<BlockJobResult> Completion => _completion.Task;

    /// <summary>A <c>JOB_STATUS_CHANGE</c>: the new status, waking the status waits it satisfies; published when <paramref name="publish"/>.</summary>
    public void SetStatus(JobStatus status, string trigger, bool publish)
    {
        List<TaskCompletionSource<JobStatus>> wake = [];
        BlockJobProgress p;
        lock (_gate)
        {
            _last = _last with { Status = status, At = _time.GetUtcNow(), Trigger = trigger };
            p = _last;
            TakeSatisfiedWaiters(wake);
        }
        foreach (var t in wake)
        {
            t.TrySetResult(status);
        }
        if (publish)
        {
            Publish(p);
        }
    }

    /// <summary>The job reached READY.</summary>
    public void MarkReady() => _ready.TrySetResult(true);

    /// <summary>Offset and length from a <c>BLOCK_JOB_*</c> event (each kept as it was when the event lacks it), published.</summary>
    public void UpdateProgress(long? offset, long? length, string trigger)
    {
        BlockJobProgress p;
        lock (_gate)
        {
            _last = _last with { Offset = offset ?? _last.Offset, Length = length ?? _last.Length, At = _time.GetUtcNow(), Trigger = trigger };
            p = _last;
        }
        Publish(p);
    }

    /// <summary>A <c>BLOCK_JOB_ERROR</c>: kept for the result, published as the last progress at this moment.</summary>
    public void AddError(BlockJobError error, string trigger)
    {
        List<TaskCompletionSource<JobStatus>> wake = [];
        JobStatus status;
        lock (_gate)
        {
            _errors.Add(error);
            status = _last.Status;
            TakeSatisfiedWaiters(wake);
        }
        foreach (var t in wake)
        {
            t.TrySetResult(status);
        }
        Publish(Last with { Trigger = trigger, At = _time.GetUtcNow() });
    }

    /// <summary>
    /// Keeps a sample as the last progress, with the status the events reported (a sample may race a status change),
    /// unless it shows less copied than the progress already kept: QEMU's job progress only grows, so that sample is
    /// the older of two in flight (the job's own on a status change, a caller's) kept in the other order (a clean-clone
    /// run saw a stream sampled part-way, then its last progress back at 0 from the sample taken at its start). Its
    /// offset and length stay together.
    /// </summary>
    public BlockJobProgress KeepSample(BlockJobProgress sample)
    {
        lock (_gate)
        {
            if (sample.Offset >= _last.Offset)
            {
                _last = sample with { Status = _last.Status };
            }
            return _last;
        }
    }

    /// <summary>The final offset and length <c>query-jobs</c> gave before the dismiss (each kept as it was when absent).</summary>
    public void KeepFinalProgress(long? offset, long? length)
    {
        lock (_gate)
        {
            _last = _last with { Offset = offset ?? _last.Offset, Length = length ?? _last.Length };
        }
    }

    /// <summary>The job was dismissed: its status is null, published; a READY wait still open learns it never came.</summary>
    public BlockJobProgress Dismissed()
    {
        BlockJobProgress last;
        lock (_gate)
        {
            _last = _last with { Status = JobStatus.Null, At = _time.GetUtcNow(), Trigger = "conclusion" };
            last = _last;
        }
        Publish(last);
        _ready.TrySetResult(false);
        return last;
    }

    /// <summary>Sends <paramref name="p"/> to every watcher.</summary>
    public void Publish(BlockJobProgress p)
    {
        lock (_gate)
        {
            foreach (var w in _watchers)
            {
                w.Writer.TryWrite(p);
            }
        }
    }

    /// <summary>The last progress, then every one published until the job ends (none after it ended).</summary>
    public async IAsyncEnumerable<BlockJobProgress> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<BlockJobProgress>();
        lock (_gate)
        {
            if (_completion.Task.IsCompleted)
            {
                channel.Writer.TryComplete();
            }
            else
            {
                _watchers.Add(channel);
            }
        }
        channel.Writer.TryWrite(Last);
        await foreach (var p in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return p;
        }
    }

    /// <summary>Under the lock: removes the status waits the status and errors now satisfy into <paramref name="wake"/>.</summary>
    private void TakeSatisfiedWaiters(List<TaskCompletionSource<JobStatus>> wake)
    {
        for (var i = _statusWaiters.Count - 1; i >= 0; i--)
        {
            if (_statusWaiters[i].Predicate(_last.Status, _errors))
            {
                wake.Add(_statusWaiters[i].Tcs);
                _statusWaiters.RemoveAt(i);
            }
        }
    }

    /// <summary>
    /// The status now when it satisfies <paramref name="predicate"/>; otherwise a task the first status change that
    /// does completes (faulted when the job concludes first). Throws when the job has concluded already.
    /// </summary>
    public Task<JobStatus> WhenStatus(Func<JobStatus, bool> predicate, string awaited) => WhenStatus((s, _) => predicate(s), awaited);

    /// <summary>
    /// As <see cref="WhenStatus(Func{JobStatus, bool}, string)"/>, for a condition on the status and the
    /// <c>BLOCK_JOB_ERROR</c>s seen together, checked again at each status change and each error.
    /// </summary>
    public Task<JobStatus> WhenStatus(Func<JobStatus, IReadOnlyList<BlockJobError>, bool> predicate, string awaited)
    {
        var tcs = new TaskCompletionSource<JobStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (predicate(_last.Status, _errors))
            {
                return Task.FromResult(_last.Status);
            }
            if (_completion.Task.IsCompleted)
            {
                throw new LabException($"{_type} job {_id} already concluded; it will not reach {awaited}");
            }
            _statusWaiters.Add((predicate, tcs));
        }
        return tcs.Task;
    }

    /// <summary>Withdraws a status wait that timed out.</summary>
    public void Withdraw(Task<JobStatus> waiting)
    {
        lock (_gate)
        {
            _statusWaiters.RemoveAll(w => w.Tcs.Task == waiting);
        }
    }

    /// <summary>The job ended as <paramref name="result"/> says.</summary>
    public void Succeed(BlockJobResult result) => Finish(() => _completion.TrySetResult(result));

    /// <summary>The job failed, or can no longer be followed: its end and a READY still awaited fail with <paramref name="error"/>.</summary>
    public void Fail(LabException error)
    {
        // The job's end first: a READY wait that fails sees Completion already faulted.
        Finish(() => _completion.TrySetException(error));
        _ready.TrySetException(error);
    }

    private void Finish(Action complete)
    {
        if (Interlocked.Exchange(ref _concluded, 1) == 0)
        {
            _concluding?.Invoke();
        }
        // The end is recorded before anyone waiting is woken: a watch that ends or a status wait that fails sees
        // Completion done, and a watch or status wait that starts meanwhile sees it and does not register (registered
        // after the lists were emptied, it would never be woken).
        complete();
        List<TaskCompletionSource<JobStatus>> waiters;
        lock (_gate)
        {
            foreach (var w in _watchers)
            {
                w.Writer.TryComplete();
            }
            _watchers.Clear();
            waiters = _statusWaiters.Select(w => w.Tcs).ToList();
            _statusWaiters.Clear();
        }
        foreach (var w in waiters)
        {
            w.TrySetException(new LabException($"{_type} job {_id} concluded"));
        }
    }
}
