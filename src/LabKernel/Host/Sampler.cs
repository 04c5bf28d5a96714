namespace LabKernel.Host;

/// <summary>One reading a <see cref="Sampler{T}"/> took: its value and the time its answer came, on the sampler's clock.</summary>
public readonly record struct Reading<T>(DateTimeOffset At, T Value);

/// <summary>
/// Reads something every <see cref="DefaultInterval"/> (or the interval given) in the background and keeps every
/// answer with the time it came: the evidence behind a measurement of what happened during an operation (when the
/// guest agent answered pings, when libvirt showed the domain paused). A read that fails with a
/// <see cref="LabException"/> (no answer: libvirt refuses agent commands while a domain is paused; a daemon busy or
/// reconnecting) records nothing for its tick, so a gap in the readings is a time without an answer.
/// The caller marks an operation's start and end on <see cref="Now"/>, and reads the readings between.
/// </summary>
/// <remarks>
/// A sampling clock, not a wait: nothing waits on a fixed time. <see cref="ReadyAsync"/> and <see cref="StopAsync"/>
/// wait for a reading, each with a limit and an error naming what was awaited.
/// </remarks>
public sealed class Sampler<T> : IDisposable
{
    /// <summary>How often a reading is taken unless the sampler is given another interval.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(20);

    private readonly TimeProvider _time;
    private readonly DateTimeOffset _origin;
    private readonly long _originTimestamp;
    private readonly string _what;
    private readonly List<Reading<T>> _readings = [];
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private volatile bool _stopping;

    /// <summary>
    /// Starts reading <paramref name="read"/>, described by <paramref name="what"/> in errors ("the guest agent's answer
    /// to a guest-ping"), on <paramref name="time"/>'s clock (default the system's).
    /// </summary>
    public Sampler(Func<CancellationToken, Task<T>> read, string what, TimeProvider? time = null, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentException.ThrowIfNullOrWhiteSpace(what);
        _time = time ?? TimeProvider.System;
        _origin = _time.GetUtcNow();
        _originTimestamp = _time.GetTimestamp();
        _what = what;
        var every = interval ?? DefaultInterval;
        if (every <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(interval), every, "a sampling interval must be positive");
        }
        _loop = Task.Run(() => RunAsync(read, every, _abort.Token));
    }

    /// <summary>
    /// Now on the sampler's clock, to mark an operation's start and end against the readings: the time it started
    /// plus the monotonic time since, so a wall clock set meanwhile moves no reading.
    /// </summary>
    public DateTimeOffset Now => _origin + _time.GetElapsedTime(_originTimestamp);

    /// <summary>Every reading so far, in order.</summary>
    public IReadOnlyList<Reading<T>> Readings
    {
        get
        {
            lock (_readings)
            {
                return _readings.ToArray();
            }
        }
    }

    /// <summary>Waits for the first reading, so the sampler covers what follows.</summary>
    public Task ReadyAsync(TimeSpan limit, CancellationToken cancellationToken = default) =>
        Poll.ForAsync(Task.WhenAny(_first.Task, _loop).Unwrap(), $"the first reading of {_what}", limit, time: _time, cancellationToken: cancellationToken);

    /// <summary>
    /// Waits for one reading begun after this call (the operation has ended, so it closes the last gap), ends the
    /// sampling and returns every reading.
    /// </summary>
    public async Task<IReadOnlyList<Reading<T>>> StopAsync(TimeSpan limit)
    {
        _stopping = true;
        await Poll.ForAsync(_loop, $"a reading of {_what} after the operation", limit, time: _time).ConfigureAwait(false);
        return Readings;
    }

    private async Task RunAsync(Func<CancellationToken, Task<T>> read, TimeSpan every, CancellationToken abort)
    {
        using var tick = new PeriodicTimer(every, _time);
        while (true)
        {
            var stopping = _stopping;
            T value;
            try
            {
                value = await read(abort).ConfigureAwait(false);
            }
            catch (LabException)
            {
                await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
                continue;
            }
            lock (_readings)
            {
                _readings.Add(new Reading<T>(Now, value));
            }
            _first.TrySetResult();
            if (stopping)
            {
                return;
            }
            await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _abort.Cancel();
        _abort.Dispose();
    }
}
