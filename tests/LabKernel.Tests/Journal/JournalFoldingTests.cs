using LabKernel.Journal;

namespace LabKernel.Tests.Journal;

/// <summary>A journal's repeated polls become one row each (command, count, time span, outcome); other entries stay one row each.</summary>
public sealed class JournalFoldingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 8, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// What SequenceWriter.WaitAsync journals: per poll a guest-exec-status (the writer still running), then a read of
    /// its progress file; the first 27 opens fail (the writer has not created the file yet) and the wait's probe took
    /// them as "not yet"; later opens succeed and each read and close has its own handle.
    /// </summary>
    private static List<JournalEntry> WriterWait(long waitId, ref long sequence, ref TimeSpan at)
    {
        var entries = new List<JournalEntry>();
        for (var poll = 0; poll < 132; poll++)
        {
            entries.Add(Entry(++sequence, at, "agent", """{"execute":"guest-exec-status","arguments":{"pid":412}}""", true, """{"exited":false}""", waitId));
            at += TimeSpan.FromMilliseconds(250);
            if (poll < 27)
            {
                entries.Add(Entry(++sequence, at, "agent", """{"execute":"guest-file-open","arguments":{"path":"/tmp/w.progress","mode":"r"}}""", false,
                    "GenericError: failed to open file '/tmp/w.progress': No such file or directory", waitId) with { NotYet = true });
            }
            else
            {
                var handle = 1000 + poll;
                entries.Add(Entry(++sequence, at, "agent", """{"execute":"guest-file-open","arguments":{"path":"/tmp/w.progress","mode":"r"}}""", true, handle.ToString(), waitId));
                entries.Add(Entry(++sequence, at, "agent", $$$"""{"execute":"guest-file-read","arguments":{"handle":{{{handle}}},"count":65536}}""", true, """{"count":6,"eof":true}""", waitId));
                entries.Add(Entry(++sequence, at, "agent", $$$"""{"execute":"guest-file-close","arguments":{"handle":{{{handle}}}}}""", true, "{}", waitId));
            }
        }
        return entries;
    }

    private static JournalEntry Entry(long sequence, TimeSpan at, string channel, string command, bool ok, string reply, long waitId) =>
        new(sequence, channel, command, T0 + at, TimeSpan.FromMilliseconds(2), ok, reply)
        {
            WaitId = waitId,
            Wait = waitId == 0 ? null : "the guest writer of 4000000 lines to exit",
        };

    [Fact]
    public void Given_a_writer_wait_of_132_polls_When_folded_Then_each_command_of_the_wait_is_one_row_with_its_count_span_and_outcome()
    {
        long sequence = 0;
        var at = TimeSpan.Zero;
        var entries = new List<JournalEntry> { Entry(++sequence, at, "agent", """{"execute":"guest-exec","arguments":{"path":"awk"}}""", true, """{"pid":412}""", 0) };
        entries.AddRange(WriterWait(waitId: 7, ref sequence, ref at));
        entries.Add(Entry(++sequence, at, "qmp", """{"execute":"query-block"}""", true, "[...]", 0));

        var rows = entries.Fold();

        Assert.Equal(
            ["guest-exec", "guest-exec-status", "guest-file-open", "guest-file-read", "guest-file-close", "query-block"],
            rows.Select(r => r.Command.Split('"')[3]));
        var status = rows[1];
        Assert.Equal(132, status.Count);
        Assert.Equal("132 × ok", status.OutcomeText);
        Assert.Equal(JournalOutcome.Ok, status.Outcome);
        Assert.Equal(T0 + TimeSpan.FromMilliseconds(131 * 250 + 2), status.Ended);
        Assert.Equal(T0, status.Started);
        Assert.Equal("the guest writer of 4000000 lines to exit", status.Wait);
        var open = rows[2];
        Assert.Equal(132, open.Count);
        Assert.Equal(27, open.NotYet);
        Assert.Equal(0, open.Failed);
        Assert.Equal("27 × not yet (waiting), 105 × ok", open.OutcomeText);
        Assert.Equal(JournalOutcome.Ok, open.Outcome);
        // Handles differ from poll to poll; the reads and closes still fold.
        Assert.Equal(105, rows[3].Count);
        Assert.Equal(105, rows[4].Count);
        Assert.Equal(1, rows[0].Count);
        Assert.Equal(entries.Count, rows.Sum(r => r.Count));
    }

    [Fact]
    public void Given_a_wait_that_only_got_not_yet_answers_When_folded_Then_the_row_is_waiting_not_failed()
    {
        var entries = Enumerable.Range(1, 27).Select(i => Entry(i, TimeSpan.FromMilliseconds(i * 10), "agent", """{"execute":"guest-file-open"}""", false, "GenericError: failed to open file", 3) with { NotYet = true }).ToList();

        var row = Assert.Single(entries.Fold());

        Assert.Equal(JournalOutcome.Waiting, row.Outcome);
        Assert.Equal("27 × not yet (waiting)", row.OutcomeText);
        Assert.Equal(TimeSpan.FromMilliseconds(262), row.Span);
    }

    [Fact]
    public void Given_a_real_failure_among_a_waits_polls_When_folded_Then_the_row_is_failed()
    {
        var entries = new List<JournalEntry>
        {
            Entry(1, TimeSpan.Zero, "agent", """{"execute":"guest-file-open"}""", false, "not yet", 3) with { NotYet = true },
            Entry(2, TimeSpan.FromSeconds(1), "agent", """{"execute":"guest-file-open"}""", false, "GenericError: Input/output error", 3),
        };

        var row = Assert.Single(entries.Fold());

        Assert.Equal(JournalOutcome.Failed, row.Outcome);
        Assert.Equal("1 × not yet (waiting), 1 × failed", row.OutcomeText);
        Assert.Equal("GenericError: Input/output error", row.Reply);
    }

    [Fact]
    public void Given_the_same_command_in_two_waits_and_repeated_outside_any_wait_When_folded_Then_only_each_waits_own_polls_fold()
    {
        const string Status = """{"execute":"guest-exec-status","arguments":{"pid":9}}""";
        var entries = new List<JournalEntry>
        {
            Entry(1, TimeSpan.Zero, "agent", Status, true, "{}", 1),
            Entry(2, TimeSpan.Zero, "agent", Status, true, "{}", 1),
            Entry(3, TimeSpan.Zero, "agent", Status, true, "{}", 2),
            Entry(4, TimeSpan.Zero, "agent", Status, true, "{}", 0),
            Entry(5, TimeSpan.Zero, "agent", Status, true, "{}", 0),
        };

        Assert.Equal([2, 1, 1, 1], entries.Fold().Select(r => r.Count));
    }
}
