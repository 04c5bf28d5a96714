using System.Text;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

public sealed class SequenceCheckerTests
{
    private static byte[] Seq(long n) => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(1, (int)n).Select(i => i + "\n")));

    [Fact]
    public void Given_exactly_1_to_N_When_checked_Then_it_is_complete()
    {
        var c = SequenceChecker.Check(Seq(1000), 1000);
        Assert.True(c.Complete);
        Assert.Equal(1000, c.ValidPrefix);
        Assert.Equal("complete: 1..1000", c.Summary);
    }

    [Fact]
    public void Given_a_prefix_with_a_torn_last_line_When_checked_Then_it_is_a_consistent_prefix_not_complete()
    {
        var c = SequenceChecker.Check([.. Seq(120), .. "12"u8], 1000);
        Assert.False(c.Complete);
        Assert.True(c.ConsistentPrefix);
        Assert.True(c.TornLastLine);
        Assert.Equal("12", c.TornText);
        Assert.Equal(120, c.ValidPrefix);
    }

    [Fact]
    public void Given_trailing_zero_bytes_after_a_prefix_When_checked_Then_they_are_counted_and_the_prefix_is_consistent()
    {
        var c = SequenceChecker.Check([.. Seq(50), 0, 0, 0, 0], 100);
        Assert.True(c.ConsistentPrefix);
        Assert.Equal(4, c.TrailingZeroBytes);
        Assert.Equal(50, c.ValidPrefix);
    }

    [Fact]
    public void Given_a_gap_in_the_sequence_When_checked_Then_the_first_bad_line_is_named()
    {
        var text = Encoding.ASCII.GetBytes("1\n2\n3\n5\n6\n");
        var c = SequenceChecker.Check(text, 6);
        Assert.False(c.ConsistentPrefix);
        Assert.Equal(4, c.FirstBadLine);
        Assert.Equal("5", c.FirstBadText);
        Assert.Equal(3, c.ValidPrefix);
        Assert.Contains("damaged at line 4", c.Summary);
    }

    [Fact]
    public void Given_more_lines_than_expected_When_checked_Then_it_is_not_complete()
    {
        var c = SequenceChecker.Check(Seq(11), 10);
        Assert.False(c.Complete);
        Assert.Equal(11, c.FirstBadLine);
    }

    [Fact]
    public void Given_the_last_number_without_a_newline_When_checked_Then_it_counts_as_written_and_the_file_as_complete()
    {
        var c = SequenceChecker.Check([.. Seq(9), .. "10"u8], 10);
        // Every number 1..N is there (awk's line count agrees): only the final newline is missing.
        Assert.True(c.Complete);
        Assert.Equal(10, c.ValidPrefix);
        Assert.False(c.TornLastLine);
        Assert.True(c.ConsistentPrefix);
    }

    [Fact]
    public void Given_an_empty_file_When_checked_Then_the_prefix_is_zero_and_consistent()
    {
        var c = SequenceChecker.Check([], 10);
        Assert.Equal(0, c.ValidPrefix);
        Assert.True(c.ConsistentPrefix);
        Assert.False(c.Complete);
    }

    [Fact]
    public void Given_the_same_seed_When_planning_file_operations_Then_the_plan_is_the_same_and_rmdir_follows_its_mkdir()
    {
        var a = FileOpsWorkload.Plan("/root/w", 60, seed: 7);
        var b = FileOpsWorkload.Plan("/root/w", 60, seed: 7);
        Assert.Equal(a, b);
        foreach (var rm in a.Where(o => o.Kind == FileOpKind.Rmdir))
        {
            Assert.Contains(a, o => o.Kind == FileOpKind.Mkdir && o.Path == rm.Path);
        }
        Assert.Contains(a, o => o.Kind == FileOpKind.WriteRandom);
    }

    [Fact]
    public void Given_the_awk_writer_When_its_command_is_built_Then_values_are_arguments_not_program_text()
    {
        var argv = SequenceWriter.Command(new SequenceWriterOptions { Path = "/root/x y.txt", Count = 10 });
        Assert.Equal("awk", argv[0]);
        Assert.Equal("/root/x y.txt", argv[^2]);
        Assert.DoesNotContain("x y", argv[1]);
    }
}
