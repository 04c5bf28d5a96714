using System.Text;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

/// <summary>
/// The faults notebooks 01, 02 and 06's sequence checks guard against, injected into a file that should hold 1..N:
/// a byte flipped anywhere, the file cut anywhere, a line dropped or written twice, a block lost in the middle. Each
/// must refute the check it threatens ("holds all of 1..N", "a consistent prefix", "an interrupted sequence 1..k",
/// "every line written before the freeze").
/// </summary>
public sealed class SequenceFaultTests
{
    private const long Count = 1000;

    private static byte[] Seq(long n) => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(1, (int)n).Select(i => i + "\n")));

    [Fact]
    public void Given_any_single_byte_of_a_complete_file_flipped_When_checked_Then_it_is_neither_complete_nor_a_consistent_prefix()
    {
        var good = Seq(Count);
        for (var offset = 0; offset < good.Length; offset++)
        {
            var flipped = (byte[])good.Clone();
            flipped[offset] ^= 0x01; // a digit becomes another digit, a newline becomes a vertical tab

            var c = SequenceChecker.Check(flipped, Count);

            Assert.False(c.Complete, $"byte {offset} flipped");
            Assert.False(c.ConsistentPrefix, $"byte {offset} flipped");
            Assert.False(c.InterruptedPrefix, $"byte {offset} flipped");
        }
    }

    [Fact]
    public void Given_a_complete_file_cut_at_any_byte_before_its_last_number_ends_When_checked_Then_it_is_not_complete_but_still_a_consistent_prefix()
    {
        var good = Seq(Count);
        // Cut only the final newline and all of 1..N is still there: the checker counts a last number without its
        // newline (as awk's line count does), so that one cut is "complete" by design.
        Assert.True(SequenceChecker.Check(good.AsSpan(0, good.Length - 1), Count).Complete);
        for (var length = 0; length < good.Length - 1; length++)
        {
            var c = SequenceChecker.Check(good.AsSpan(0, length), Count);

            Assert.False(c.Complete, $"cut at {length}");
            // A truncated copy is what a crash leaves: the prefix checks stay confirmed, "holds all" is refuted.
            Assert.True(c.ConsistentPrefix, $"cut at {length}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(500)]
    [InlineData(999)]
    public void Given_one_line_dropped_When_checked_Then_the_line_after_the_gap_is_named_and_nothing_is_confirmed(int dropped)
    {
        var lines = Enumerable.Range(1, (int)Count).Where(i => i != dropped).Select(i => i + "\n");

        var c = SequenceChecker.Check(Encoding.ASCII.GetBytes(string.Concat(lines)), Count);

        Assert.False(c.Complete);
        Assert.False(c.ConsistentPrefix);
        Assert.Equal(dropped, c.FirstBadLine);
        Assert.Equal(dropped - 1, c.ValidPrefix);
        Assert.False(c.InterruptedPrefix);
    }

    [Fact]
    public void Given_a_line_written_twice_When_checked_Then_it_is_damaged_there()
    {
        var lines = Enumerable.Range(1, (int)Count).SelectMany(i => i == 300 ? new[] { i, i } : [i]).Select(i => i + "\n");

        var c = SequenceChecker.Check(Encoding.ASCII.GetBytes(string.Concat(lines)), Count);

        Assert.False(c.Complete);
        Assert.Equal(301, c.FirstBadLine);
        Assert.Equal("300", c.FirstBadText);
    }

    [Fact]
    public void Given_a_block_of_zero_bytes_in_the_middle_When_checked_Then_it_is_damage_not_a_crash_tail()
    {
        var bytes = Seq(Count);
        Array.Clear(bytes, 1000, 512); // a lost write inside the file; only zero bytes at the very end are a crash's tail

        var c = SequenceChecker.Check(bytes, Count);

        Assert.False(c.Complete);
        Assert.False(c.ConsistentPrefix);
        Assert.Equal(0, c.TrailingZeroBytes);
    }

    [Theory]
    [InlineData(0, false)]      // the layer holds none of the lines (k = 0)
    [InlineData(1000, false)]   // all of them: the snapshot came after the writer ended
    [InlineData(1, true)]
    [InlineData(999, true)]
    public void Given_a_prefix_of_k_lines_When_asked_for_an_interrupted_sequence_Then_only_0_below_k_below_N_is_one(long k, bool expected)
    {
        Assert.Equal(expected, SequenceChecker.Check(Seq(k), Count).InterruptedPrefix);
    }

    [Fact]
    public void Given_an_interrupted_prefix_with_a_torn_last_line_When_asked_Then_it_is_one_but_a_damaged_line_makes_it_none()
    {
        Assert.True(SequenceChecker.Check([.. Seq(120), .. "12"u8], Count).InterruptedPrefix);
        Assert.False(SequenceChecker.Check([.. Seq(120), .. "7\n"u8, .. "122\n"u8], Count).InterruptedPrefix);
    }

    [Theory]
    [InlineData(600, 600, true)]
    [InlineData(650, 600, true)]
    [InlineData(599, 600, false)]  // the frozen layer lost a line the guest had written before the freeze
    [InlineData(0, 600, false)]
    public void Given_a_frozen_layer_holding_k_lines_When_asked_whether_it_holds_every_line_written_before_Then_only_k_at_least_that_is(long k, long writtenBefore, bool expected)
    {
        Assert.Equal(expected, SequenceChecker.Check(Seq(k), Count).HoldsAtLeast(writtenBefore));
    }

    [Fact]
    public void Given_a_frozen_layer_with_enough_lines_but_a_damaged_one_after_them_When_asked_Then_it_does_not_hold_them()
    {
        var c = SequenceChecker.Check([.. Seq(700), .. "9\n"u8], Count);

        Assert.True(c.ValidPrefix >= 600);
        Assert.False(c.HoldsAtLeast(600));
    }
}
