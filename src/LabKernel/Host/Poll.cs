using LabKernel.Journal;

namespace LabKernel.Host;

/// <summary>
/// The lab's one way to wait for something that sends no event (a socket to appear, an agent to answer, a guest
/// writer to reach a line): ask, and until the answer is yes wait a little longer each time (<see cref="Backoff"/>)
/// on one clock (<see cref="TimeProvider"/>, so tests run it on a fake one), until a time limit.
/// Waits for an event (a QMP event, a process exit, a job's end) await the event itself, through
/// <see cref="ForAsync{T}"/>: the same limit, clock and error. A wait that reads (a socket, an event channel) runs
/// through <see cref="WithinAsync{T}"/>, which cancels the read when the limit passes and awaits it, so no read
/// outlives its wait to take bytes or an event meant for the next one.
/// The commands a probe issues are journaled as this wait's (<see cref="JournalWait"/>), so reports fold its polls.
/// </summary>
public static class Poll
{
    /// <summary>
    /// Calls <paramref name="probe"/> until it says <c>Done</c> and returns its value. Between calls it waits by
    /// <paramref name="backoff"/> (default <see cref="Backoff.Default"/>), never past the limit: the last call starts
    /// at (or just after) the limit. When that one is not done either, it throws a <see cref="LabTimeoutException"/> naming
    /// <paramref name="awaited"/> and the probe's last <c>Status</c> (empty for none). An exception from the probe
    /// ends the wait as it is (a probe throws to give up early, for a reason waiting cannot fix).
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits without limit. When <paramref name="wake"/> (an event that may
    /// mean "done", such as a lifecycle event) completes, the probe is asked again at once instead of after the
    /// back-off.
    /// </summary>
    public static async Task<T> UntilAsync<T>(
        Func<CancellationToken, Task<(bool Done, T Value, string Status)>> probe,
        string awaited,
        TimeSpan limit,
        Backoff? backoff = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default,
        Task? wake = null)
    {
        ArgumentNullException.ThrowIfNull(probe);
        backoff ??= Backoff.Default;
        time ??= TimeProvider.System;
        var started = time.GetTimestamp();
        var delay = backoff.Initial;
        var journal = JournalWait.Begin(awaited);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var asked = time.GetElapsedTime(started);
            bool done;
            T value;
            string status;
            using (var attempt = journal.Attempt())
            {
                (done, value, status) = await probe(cancellationToken).ConfigureAwait(false);
                // The probe answered (done or not yet) rather than throwing: a command that failed in it, such as
                // opening a file not created yet, was the awaited thing saying "not yet" (the journal shows it waiting).
                attempt.Answered();
            }
            if (done)
            {
                return value;
            }
            var wait = delay;
            if (limit != Timeout.InfiniteTimeSpan)
            {
                // Only a "no" asked at or after the limit ends the wait: one that was still on its way when the
                // limit passed is asked again at once.
                if (asked >= limit)
                {
                    throw new LabTimeoutException(awaited, limit, string.IsNullOrEmpty(status) ? null : status);
                }
                var left = limit - time.GetElapsedTime(started);
                wait = left <= TimeSpan.Zero ? TimeSpan.Zero : left < delay ? left : delay;
            }
            if (wake is null || wake.IsCompleted)
            {
                await Task.Delay(wake is null ? wait : TimeSpan.Zero, time, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                using var woken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var sleep = Task.Delay(wait, time, woken.Token);
                await Task.WhenAny(sleep, wake).ConfigureAwait(false);
                await woken.CancelAsync().ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            delay = backoff.Next(delay);
        }
    }

    /// <summary>As <see cref="UntilAsync{T}"/>, for a probe with no value to return.</summary>
    public static Task UntilAsync(
        Func<CancellationToken, Task<(bool Done, string Status)>> probe,
        string awaited,
        TimeSpan limit,
        Backoff? backoff = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default,
        Task? wake = null)
    {
        ArgumentNullException.ThrowIfNull(probe);
        return UntilAsync<bool>(async ct =>
        {
            var (done, status) = await probe(ct).ConfigureAwait(false);
            return (done, done, status);
        }, awaited, limit, backoff, time, cancellationToken, wake);
    }

    /// <summary>
    /// Awaits <paramref name="event"/> (a task an event completes: a job's READY, a process's exit) until
    /// <paramref name="limit"/> on <paramref name="time"/>'s clock; past it, throws a <see cref="LabTimeoutException"/>
    /// naming <paramref name="awaited"/> and <paramref name="status"/>'s answer then (what was last seen), after
    /// <paramref name="onTimeout"/> (to withdraw a waiter). The event's own exception passes as it is.
    /// </summary>
    public static async Task<T> ForAsync<T>(
        Task<T> @event,
        string awaited,
        TimeSpan limit,
        Func<string?>? status = null,
        Action? onTimeout = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(@event);
        try
        {
            return await @event.WaitAsync(limit, time ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw TimedOut(awaited, limit, status, onTimeout);
        }
    }

    /// <summary>
    /// Runs <paramref name="operation"/> (a read, a handshake) with a token that <paramref name="time"/>'s clock
    /// cancels when <paramref name="limit"/> passes, and awaits its end: unlike <see cref="ForAsync{T}"/>, nothing the
    /// operation started is left running past the wait. When it ended because the limit passed, throws a
    /// <see cref="LabTimeoutException"/> naming <paramref name="awaited"/> and <paramref name="status"/>'s answer then.
    /// The caller's own cancellation passes as an <see cref="OperationCanceledException"/>, and any other exception
    /// as it is. <see cref="Timeout.InfiniteTimeSpan"/> runs it without limit.
    /// </summary>
    public static async Task<T> WithinAsync<T>(
        Func<CancellationToken, Task<T>> operation,
        string awaited,
        TimeSpan limit,
        Func<string?>? status = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operation);
        using var expiry = new CancellationTokenSource(limit, time ?? TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            return await operation(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (expiry.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(awaited, limit, status);
        }
    }

    /// <summary>As <see cref="WithinAsync{T}"/>, for an operation with no value.</summary>
    public static Task WithinAsync(
        Func<CancellationToken, Task> operation,
        string awaited,
        TimeSpan limit,
        Func<string?>? status = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return WithinAsync(async ct =>
        {
            await operation(ct).ConfigureAwait(false);
            return true;
        }, awaited, limit, status, time, cancellationToken);
    }

    /// <summary>As <see cref="ForAsync{T}"/>, for an event with no value.</summary>
    public static Task ForAsync(
        Task @event,
        string awaited,
        TimeSpan limit,
        Func<string?>? status = null,
        Action? onTimeout = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(@event);
        return ForAsync(Completion(@event), awaited, limit, status, onTimeout, time, cancellationToken);

        static async Task<bool> Completion(Task t)
        {
            await t.ConfigureAwait(false);
            return true;
        }
    }

    /// <summary>
    /// The error of a wait whose limit passed (<see cref="ForAsync{T}"/>, <see cref="WithinAsync{T}"/>): after
    /// <paramref name="onTimeout"/>, a <see cref="LabTimeoutException"/> naming <paramref name="awaited"/>, the limit
    /// and <paramref name="status"/>'s answer now.
    /// </summary>
    private static LabTimeoutException TimedOut(string awaited, TimeSpan limit, Func<string?>? status, Action? onTimeout = null)
    {
        onTimeout?.Invoke();
        return new LabTimeoutException(awaited, limit, status?.Invoke());
    }
}
