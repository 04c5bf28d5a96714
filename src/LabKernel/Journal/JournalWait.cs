namespace LabKernel.Journal;

/// <summary>
/// One wait for something that sends no event (every <c>Host.Poll</c> is one): the commands asked while it waits are
/// journaled with its name (<see cref="JournalEntry.Wait"/>), so a report can fold its many polls into one row, and
/// a command that failed in an attempt the waiting code then answered "not yet" is marked so
/// (<see cref="JournalEntry.NotYet"/>): an expected not-yet answer shows as waiting, not as a failure. A failure in
/// an attempt that gave up (the probe threw) stays a failure.
/// </summary>
public sealed class JournalWait
{
    private static long _lastId;

    private JournalWait(string awaited)
    {
        Awaited = awaited;
        Id = Interlocked.Increment(ref _lastId);
    }

    /// <summary>What is awaited, as the wait says it ("the guest writer to reach 1000 lines").</summary>
    public string Awaited { get; }

    /// <summary>Unique in the process.</summary>
    public long Id { get; }

    public static JournalWait Begin(string awaited) => new(awaited);

    /// <summary>
    /// One ask of the wait: commands journaled in this async flow until the attempt is disposed belong to it. Call
    /// <see cref="WaitAttempt.Answered"/> when the ask returned an answer (done or not yet) rather than giving up.
    /// </summary>
    public WaitAttempt Attempt() => new(this);
}

/// <summary>One ask of a <see cref="JournalWait"/>; see there.</summary>
public sealed class WaitAttempt : IDisposable
{
    private static readonly AsyncLocal<WaitAttempt?> CurrentAttempt = new();
    private readonly WaitAttempt? _outer;
    private readonly List<(LabJournal Journal, long Sequence)> _failed = [];
    private bool _answered;

    internal WaitAttempt(JournalWait wait)
    {
        Wait = wait;
        _outer = CurrentAttempt.Value;
        CurrentAttempt.Value = this;
    }

    /// <summary>The innermost attempt of this async flow, if any.</summary>
    internal static WaitAttempt? Current => CurrentAttempt.Value;

    public JournalWait Wait { get; }

    /// <summary>The ask returned an answer: the commands that failed in it were the waited-for thing saying "not yet".</summary>
    public void Answered()
    {
        List<(LabJournal Journal, long Sequence)> failed;
        lock (_failed)
        {
            _answered = true;
            failed = [.. _failed];
            _failed.Clear();
        }
        foreach (var group in failed.GroupBy(f => f.Journal))
        {
            group.Key.MarkNotYet([.. group.Select(f => f.Sequence)]);
        }
    }

    public void Dispose() => CurrentAttempt.Value = _outer;

    internal void Failed(LabJournal journal, long sequence)
    {
        lock (_failed)
        {
            // A command that ends after its attempt was answered (still running when the probe returned) is not
            // known to have been taken as "not yet": it stays a failure.
            if (!_answered)
            {
                _failed.Add((journal, sequence));
            }
        }
    }
}
