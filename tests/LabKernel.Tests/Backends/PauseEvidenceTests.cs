using LabKernel.Backends;

namespace LabKernel.Tests.Backends;

/// <summary>
/// How long a snapshot paused the guest, from the times the guest agent answered pings: only silence inside the call
/// counts (a loaded host's gaps before or after it are not the snapshot's), and a window the answers do not bracket
/// counts as silent throughout.
/// </summary>
public sealed class PauseEvidenceTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static TimeSpan Span(double ms) => TimeSpan.FromMilliseconds(ms);

    private static DateTimeOffset Ms(double ms) => T0.AddMilliseconds(ms);

    private static DateTimeOffset[] Answers(params double[] ms) => ms.Select(Ms).ToArray();

    [Fact]
    public void Given_a_long_gap_just_before_a_short_call_that_the_guest_answered_through_Then_only_the_calls_own_silence_counts()
    {
        // CI's case: a 465 ms gap on a saturated host around a 48 ms disk-only snapshot.
        var answers = Answers(0, 465, 485, 505, 525, 545);
        Assert.Equal(Span(20), PauseEvidence.LongestSilenceWithin(answers, Ms(470), Ms(518)));
    }

    [Fact]
    public void Given_a_call_during_which_the_guest_never_answered_Then_the_whole_call_is_silent()
    {
        // An internal snapshot: the guest is stopped from just after the call starts until it ends.
        var answers = Answers(0, 20, 40, 910, 930);
        Assert.Equal(Span(850), PauseEvidence.LongestSilenceWithin(answers, Ms(50), Ms(900)));
    }

    [Fact]
    public void Given_a_pause_inside_a_longer_call_Then_it_is_the_longest_stretch_between_answers_inside()
    {
        var answers = Answers(0, 20, 40, 60, 360, 380, 400, 420);
        Assert.Equal(Span(300), PauseEvidence.LongestSilenceWithin(answers, Ms(10), Ms(410)));
    }

    [Fact]
    public void Given_answers_that_do_not_bracket_the_call_Then_nothing_shows_the_guest_answered_and_the_whole_call_counts()
    {
        Assert.Equal(Span(100), PauseEvidence.LongestSilenceWithin(Answers(), Ms(0), Ms(100)));
        Assert.Equal(Span(100), PauseEvidence.LongestSilenceWithin(Answers(50, 150), Ms(0), Ms(100)));
        Assert.Equal(Span(100), PauseEvidence.LongestSilenceWithin(Answers(0, 50), Ms(0), Ms(100)));
    }
}
