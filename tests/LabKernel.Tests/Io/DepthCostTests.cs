using LabKernel.Experiments;
using LabKernel.Images;
using LabKernel.Io;

namespace LabKernel.Tests.Io;

/// <summary>
/// Notebook 04's depth hypothesis and its probe checks, with the faults they guard against injected: repeats that
/// overlap, a reversed order, too few repeats, a probe whose blocks are not in the base layer, fallocated space.
/// </summary>
public sealed class DepthCostTests
{
    [Fact]
    public void Given_every_deep_run_below_every_shallow_run_Then_slower_is_confirmed_with_the_values()
    {
        var (holds, observed) = DepthCost.Slower(Spread.Of([1000, 1050, 980]), 2, Spread.Of([700, 720, 690]), 7, "IOPS");
        Assert.True(holds);
        Assert.Contains("IOPS 700 (690-720, 3 runs) at 7 layers vs 1000 (980-1050, 3 runs) at 2", observed, StringComparison.Ordinal);
        Assert.Contains("0.70x", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_overlapping_ranges_Then_slower_is_refuted_even_when_the_deep_median_is_lower()
    {
        var (holds, observed) = DepthCost.Slower(Spread.Of([1000, 1050, 800]), 2, Spread.Of([900, 950, 850]), 7, "IOPS");
        Assert.False(holds);
        Assert.Contains("overlap", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_deep_runs_all_faster_Then_slower_is_refuted_as_the_reverse()
    {
        var (holds, observed) = DepthCost.Slower(Spread.Of([700, 710, 720]), 2, Spread.Of([1000, 1010, 990]), 7, "IOPS");
        Assert.False(holds);
        Assert.Contains("the reverse", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_fewer_than_three_runs_at_a_point_Then_no_test_is_applied()
    {
        Assert.False(DepthCost.CanTest(Spread.Of([1, 2]), Spread.Of([1, 2, 3])));
        Assert.True(DepthCost.CanTest(Spread.Of([1, 2, 3]), Spread.Of([1, 2, 3])));
        Assert.Equal(2, Spread.Of([3, 1, 2]).Median);
        Assert.Equal(2.5, Spread.Of([4, 1, 2, 3]).Median);
        Assert.Throws<ArgumentException>(() => Spread.Of([]));
    }

    [Fact]
    public void Given_a_refuted_hypothesis_Then_it_is_not_an_unexpected_refutation_but_a_refuted_check_is()
    {
        var f = new Findings();
        var h = f.Hypothesis("deeper is slower", false, "ranges overlap");
        Assert.Equal("refuted", h.Verdict);
        Assert.Equal("refuted (hypothesis)", h.VerdictText);
        Assert.False(h.IsUnexpectedRefutation);
        Assert.True(f.AllConfirmed);
        f.Check("the probe read all its data", false, "16 of 32 MiB");
        Assert.False(f.AllConfirmed);
    }

    private const string Filefrag = """
        Filesystem type is: ef53
        File size of /data/probe is 8388608 (2048 blocks of 4096 bytes)
         ext:     logical_offset:        physical_offset: length:   expected: flags:
           0:        0..    1023:      34816..     35839:   1024:
           1:     1024..    2047:      40960..     41983:   1024:      35840: last,eof
        /data/probe: 2 extents found
        """;

    [Fact]
    public void Given_filefrag_output_Then_the_extents_are_disk_offsets_in_bytes()
    {
        var x = FileExtents.Parse(Filefrag);
        Assert.Equal("/data/probe", x.Path);
        Assert.Equal(8388608, x.Size);
        Assert.Equal([new FileExtent(0, 34816L * 4096, 4 * 1048576, false), new FileExtent(4 * 1048576, 40960L * 4096, 4 * 1048576, false)], x.Extents);
        Assert.Equal(8388608, x.WrittenBytes);
        Assert.Equal(0, x.UnwrittenBytes);
    }

    [Fact]
    public void Given_fallocated_extents_Then_they_are_counted_as_unwritten()
    {
        var x = FileExtents.Parse(Filefrag.Replace("35840: last,eof", "35840: last,unwritten,eof", StringComparison.Ordinal));
        Assert.Equal(4 * 1048576, x.UnwrittenBytes);
        Assert.Equal(4 * 1048576, x.WrittenBytes);
    }

    [Fact]
    public void Given_not_filefrag_output_Then_one_line_error()
    {
        var e = Assert.Throws<LabException>(() => FileExtents.Parse("filefrag: command not found\n"));
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Given_a_map_Then_the_probe_bytes_are_counted_by_the_layer_that_holds_them_and_a_copied_up_block_shows()
    {
        var x = FileExtents.Parse(Filefrag);
        long a = 34816L * 4096, b = 40960L * 4096, mib = 1048576;
        // All in the base (depth 2 of a 3-layer chain).
        var inBase = new AllocationMap([new AllocationExtent(0, a, 2, true, true, false, 0), new AllocationExtent(a, 64 * mib, 2, true, true, false, a), new AllocationExtent(a + 64 * mib, 64 * mib, 2, true, true, false, 0)]);
        Assert.Equal(new Dictionary<int, long> { [2] = 8 * mib }, x.BytesByLayer(inBase));
        // One MiB of the second extent rewritten in the top overlay (depth 0): the fault the check guards against.
        var copiedUp = new AllocationMap([new AllocationExtent(0, b, 2, true, true, false, 0), new AllocationExtent(b, mib, 0, true, true, false, 0), new AllocationExtent(b + mib, 64 * mib, 2, true, true, false, 0)]);
        Assert.Equal(new Dictionary<int, long> { [0] = mib, [2] = 7 * mib }, x.BytesByLayer(copiedUp));
        // Past the end of the map: held by no layer.
        Assert.Equal(new Dictionary<int, long> { [-1] = 8 * mib }, x.BytesByLayer(new AllocationMap([])));
    }
}

public sealed class FioReadOnlyTests
{
    [Fact]
    public void Given_a_read_only_job_Then_fio_is_told_to_refuse_writes()
    {
        Assert.Contains("--readonly", new FioJob { Filename = "/data/probe", ReadWrite = "randread", ReadOnly = true }.Arguments());
        Assert.DoesNotContain("--readonly", new FioJob { Filename = "/data/probe", ReadWrite = "randread" }.Arguments());
    }
}
