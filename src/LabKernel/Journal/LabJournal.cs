using System.Diagnostics;

namespace LabKernel.Journal;

/// <summary>One thing the lab issued: a QMP command, a guest-agent command, a program run, a libvirt call.</summary>
public sealed record JournalEntry(
    long Sequence,
    string Channel,
    string Command,
    DateTimeOffset Started,
    TimeSpan Duration,
    bool Succeeded,
    string Reply)
{
    /// <summary>
    /// The wait this was asked in (<see cref="JournalWait"/>: every <c>Poll</c> is one), as the wait names what it
    /// awaits; null when it was not asked while waiting.
    /// </summary>
    public string? Wait { get; init; }

    /// <summary>Which wait (unique in the process; 0 for none): two waits for the same thing are two.</summary>
    public long WaitId { get; init; }

    /// <summary>
    /// A failed command whose answer the waiting code took as "not yet" (the wait's probe returned, asking again
    /// later, rather than giving up), such as opening a progress file the guest's writer has not created yet. It is
    /// still a failure in this record (<see cref="Succeeded"/> stays false); reports show it as waiting.
    /// </summary>
    public bool NotYet { get; init; }
}

/// <summary>
/// Records every operation the lab issues, when, how long it took and what came back, so a report can show
/// each step in a form a reader can reproduce. <see cref="Current"/> flows with async calls; a notebook or a
/// test can start its own journal with <see cref="BeginScope"/>.
/// </summary>
public sealed class LabJournal
{
    private static readonly LabJournal Global = new();
    private static readonly AsyncLocal<LabJournal?> Scoped = new();
    private readonly List<JournalEntry> _entries = [];
    private long _sequence;

    public LabJournal(TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
    }

    /// <summary>The journal operations are recorded in: the innermost scope, or the process-wide one.</summary>
    public static LabJournal Current => Scoped.Value ?? Global;

    public TimeProvider Time { get; }

    /// <summary>Entries recorded so far, oldest first (a snapshot).</summary>
    public IReadOnlyList<JournalEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return _entries.ToArray();
            }
        }
    }

    /// <summary>Most entries kept; the oldest are dropped beyond it so a long run does not grow without bound.</summary>
    public int Capacity { get; init; } = 20_000;

    /// <summary>Makes <paramref name="journal"/> current for this async flow until the result is disposed.</summary>
    public static IDisposable BeginScope(LabJournal journal)
    {
        var previous = Scoped.Value;
        Scoped.Value = journal;
        return new ScopeRestore(previous);
    }

    /// <summary>Starts an entry; complete or fail the returned handle when the reply arrives.</summary>
    public PendingEntry Begin(string channel, string command) =>
        new(this, channel, command, Time.GetUtcNow(), Stopwatch.GetTimestamp(), WaitAttempt.Current);

    public void Clear()
    {
        lock (_entries)
        {
            _entries.Clear();
        }
    }

    internal JournalEntry Add(PendingEntry p, bool ok, string reply)
    {
        lock (_entries)
        {
            var entry = new JournalEntry(++_sequence, p.Channel, p.Command, p.Started, Stopwatch.GetElapsedTime(p.Timestamp), ok, reply)
            {
                Wait = p.Attempt?.Wait.Awaited,
                WaitId = p.Attempt?.Wait.Id ?? 0,
            };
            _entries.Add(entry);
            if (_entries.Count > Capacity)
            {
                _entries.RemoveRange(0, _entries.Count - Capacity);
            }
            return entry;
        }
    }

    /// <summary>Marks the entries (if still kept) as answers the waiting code took as "not yet".</summary>
    internal void MarkNotYet(IReadOnlyCollection<long> sequences)
    {
        lock (_entries)
        {
            foreach (var sequence in sequences)
            {
                // Sequences grow with the index; the oldest entries may have been dropped (Capacity).
                var at = IndexOf(sequence);
                if (at >= 0)
                {
                    _entries[at] = _entries[at] with { NotYet = true };
                }
            }
        }
    }

    private int IndexOf(long sequence)
    {
        int lo = 0, hi = _entries.Count - 1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) / 2);
            var c = _entries[mid].Sequence.CompareTo(sequence);
            if (c == 0)
            {
                return mid;
            }
            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return -1;
    }

    private sealed class ScopeRestore(LabJournal? previous) : IDisposable
    {
        public void Dispose() => Scoped.Value = previous;
    }
}

/// <summary>An operation in flight; recorded when completed or failed (the first call wins).</summary>
public sealed class PendingEntry
{
    private readonly LabJournal _journal;
    private int _done;

    internal PendingEntry(LabJournal journal, string channel, string command, DateTimeOffset started, long timestamp, WaitAttempt? attempt)
    {
        _journal = journal;
        Channel = channel;
        Command = command;
        Started = started;
        Timestamp = timestamp;
        Attempt = attempt;
    }

    public string Channel { get; }
    public string Command { get; }
    public DateTimeOffset Started { get; }
    internal long Timestamp { get; }
    internal WaitAttempt? Attempt { get; }

    public void Complete(string reply) => Finish(true, reply);

    public void Fail(string reply) => Finish(false, reply);

    private void Finish(bool ok, string reply)
    {
        if (Interlocked.Exchange(ref _done, 1) == 0)
        {
            var entry = _journal.Add(this, ok, reply);
            if (!ok)
            {
                Attempt?.Failed(_journal, entry.Sequence);
            }
        }
    }
}
