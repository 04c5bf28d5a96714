using LabKernel.Host;
using LabKernel.Journal;
using LabKernel.Tests.Host;

namespace LabKernel.Tests.Journal;

/// <summary>
/// Commands asked inside a wait (Poll) are journaled as that wait's, and a failure the wait's probe answered "not yet"
/// is marked so, while a failure that made the probe give up stays a failure. Every entry stays in the journal.
/// </summary>
public sealed class JournalWaitTests
{
    private const string Open = """{"execute":"guest-file-open","arguments":{"path":"/tmp/w.progress","mode":"r"}}""";

    [Fact]
    public async Task Given_a_probe_whose_command_fails_until_the_file_exists_When_polled_Then_the_failures_are_not_yet_answers_of_that_wait()
    {
        var journal = new LabJournal();
        using var scope = LabJournal.BeginScope(journal);
        var calls = 0;

        await Poll.UntilAsync(_ =>
        {
            var entry = LabJournal.Current.Begin("agent", Open);
            if (++calls < 4)
            {
                entry.Fail("GenericError: failed to open file '/tmp/w.progress': No such file or directory");
                return Task.FromResult((false, "not there yet"));
            }
            entry.Complete("""{"return":1000}""");
            return Task.FromResult((true, ""));
        }, "the writer's progress file", TimeSpan.FromSeconds(10), Backoff.Every(TimeSpan.FromMilliseconds(10)), new SteppingClock());

        var entries = journal.Entries;
        Assert.Equal(4, entries.Count);
        Assert.All(entries, e => Assert.Equal("the writer's progress file", e.Wait));
        Assert.Single(entries.Select(e => e.WaitId).Distinct());
        Assert.NotEqual(0, entries[0].WaitId);
        Assert.Equal([false, false, false, true], entries.Select(e => e.Succeeded));
        Assert.Equal([true, true, true, false], entries.Select(e => e.NotYet));
    }

    [Fact]
    public async Task Given_a_probe_that_gives_up_after_a_failed_command_When_polled_Then_that_failure_stays_a_failure()
    {
        var journal = new LabJournal();
        using var scope = LabJournal.BeginScope(journal);
        var calls = 0;

        await Assert.ThrowsAsync<LabException>(() => Poll.UntilAsync(_ =>
        {
            LabJournal.Current.Begin("agent", """{"execute":"guest-exec-status","arguments":{"pid":77}}""").Fail("GenericError: invalid pid");
            return ++calls < 2 ? Task.FromResult((false, "")) : throw new LabException("the guest process is gone");
        }, "the guest process to exit", TimeSpan.FromSeconds(10), Backoff.Every(TimeSpan.FromMilliseconds(10)), new SteppingClock()));

        Assert.Equal([true, false], journal.Entries.Select(e => e.NotYet));
        Assert.All(journal.Entries, e => Assert.False(e.Succeeded));
    }

    [Fact]
    public async Task Given_commands_outside_any_wait_and_in_two_waits_When_journaled_Then_only_the_waits_commands_carry_a_wait_each_its_own()
    {
        var journal = new LabJournal();
        using var scope = LabJournal.BeginScope(journal);
        journal.Begin("qmp", """{"execute":"query-block"}""").Fail("GenericError: no");
        for (var i = 0; i < 2; i++)
        {
            await Poll.UntilAsync(_ =>
            {
                LabJournal.Current.Begin("agent", Open).Complete("1000");
                return Task.FromResult((true, ""));
            }, "the file", TimeSpan.FromSeconds(1), time: new SteppingClock());
        }

        var entries = journal.Entries;
        Assert.Null(entries[0].Wait);
        Assert.Equal(0, entries[0].WaitId);
        Assert.False(entries[0].NotYet);
        Assert.NotEqual(entries[1].WaitId, entries[2].WaitId);
    }
}
