using System.Text.RegularExpressions;

namespace LabKernel.Journal;

/// <summary>How a row of the folded journal ended: every entry ok, still waiting (only "not yet" answers), or a real failure.</summary>
public enum JournalOutcome
{
    Ok,
    Waiting,
    Failed,
}

/// <summary>
/// One row of the folded journal: one entry, or every entry of one wait that asked the same command (132
/// <c>guest-exec-status</c> polls, 27 <c>guest-file-open</c> of a progress file not created yet): how many, from the
/// first start to the last end, and how they ended.
/// </summary>
/// <param name="FirstSequence">The first entry's sequence number.</param>
/// <param name="LastSequence">The last entry's (the same for one entry).</param>
/// <param name="Channel">qmp, agent, process, block, libvirt...</param>
/// <param name="Command">The first entry's command, as issued.</param>
/// <param name="Count">How many entries the row stands for.</param>
/// <param name="Started">When the first started.</param>
/// <param name="Ended">When the last ended.</param>
/// <param name="Succeeded">How many succeeded.</param>
/// <param name="NotYet">How many failed with an answer the wait took as "not yet" (<see cref="JournalEntry.NotYet"/>).</param>
/// <param name="Failed">How many really failed.</param>
/// <param name="Reply">The last entry's reply (the one that ended the wait, when it did).</param>
/// <param name="Wait">What the wait awaited; null outside a wait.</param>
public sealed record JournalRow(
    long FirstSequence,
    long LastSequence,
    string Channel,
    string Command,
    int Count,
    DateTimeOffset Started,
    DateTimeOffset Ended,
    int Succeeded,
    int NotYet,
    int Failed,
    string Reply,
    string? Wait)
{
    /// <summary>A failure is a failure, whatever else the row holds; only "not yet" answers and nothing else is waiting.</summary>
    public JournalOutcome Outcome => Failed > 0 ? JournalOutcome.Failed : NotYet > 0 && Succeeded == 0 ? JournalOutcome.Waiting : JournalOutcome.Ok;

    /// <summary>"132 × ok", "27 × not yet (waiting), then 1 × ok", "1 × failed".</summary>
    public string OutcomeText =>
        Count == 1
            ? (Failed > 0 ? "failed" : NotYet > 0 ? "not yet (waiting)" : "ok")
            : string.Join(", ", new[] { (NotYet, "not yet (waiting)"), (Succeeded, "ok"), (Failed, "failed") }.Where(p => p.Item1 > 0).Select(p => $"{p.Item1} × {p.Item2}"));

    public TimeSpan Span => Ended - Started;
}

/// <summary>Folds a journal's repeated polls into one row each (<see cref="JournalRow"/>); every raw entry stays in the journal.</summary>
public static partial class JournalFolding
{
    /// <summary>
    /// Entries of one wait (<see cref="JournalEntry.WaitId"/>) with the same channel and command, up to the numbers in
    /// it (a file handle, a pid, which change from poll to poll), become one row at the place of the first; entries
    /// asked outside any wait stay one row each. Oldest first.
    /// </summary>
    public static IReadOnlyList<JournalRow> Fold(this IEnumerable<JournalEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var rows = new List<JournalRow>();
        var open = new Dictionary<(long, string, string), int>();
        foreach (var e in entries)
        {
            var end = e.Started + e.Duration;
            if (e.WaitId != 0 && open.TryGetValue((e.WaitId, e.Channel, Shape(e.Command)), out var at))
            {
                var r = rows[at];
                rows[at] = r with
                {
                    LastSequence = e.Sequence,
                    Count = r.Count + 1,
                    Ended = end > r.Ended ? end : r.Ended,
                    Succeeded = r.Succeeded + (e.Succeeded ? 1 : 0),
                    NotYet = r.NotYet + (!e.Succeeded && e.NotYet ? 1 : 0),
                    Failed = r.Failed + (!e.Succeeded && !e.NotYet ? 1 : 0),
                    Reply = e.Reply,
                };
                continue;
            }
            if (e.WaitId != 0)
            {
                open[(e.WaitId, e.Channel, Shape(e.Command))] = rows.Count;
            }
            rows.Add(new JournalRow(e.Sequence, e.Sequence, e.Channel, e.Command, 1, e.Started, end,
                e.Succeeded ? 1 : 0, !e.Succeeded && e.NotYet ? 1 : 0, !e.Succeeded && !e.NotYet ? 1 : 0, e.Reply, e.Wait));
        }
        return rows;
    }

    /// <summary>The command with its numbers blanked: polls of one wait differ only there (handles, pids, offsets).</summary>
    internal static string Shape(string command) => Digits().Replace(command, "#");

    [GeneratedRegex("[0-9]+")]
    private static partial Regex Digits();
}
