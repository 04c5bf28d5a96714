using LabKernel.Images;

namespace LabKernel.Tests.Images;

public sealed class QemuImgJsonParsingTests
{
    [Fact]
    public void Given_info_of_a_three_layer_chain_When_parsed_Then_layers_run_from_active_to_base_with_their_sizes()
    {
        var chain = BackingChain.Parse(Samples.Read("info-chain.json"));

        Assert.Equal(3, chain.Count);
        Assert.Equal(["/tmp/lab-samples/overlay2.qcow2", "/tmp/lab-samples/overlay1.qcow2", "/tmp/lab-samples/base.qcow2"],
            chain.Layers.Select(l => l.Filename));
        Assert.All(chain.Layers, l => Assert.Equal(4L * 1024 * 1024, l.VirtualSize));
        Assert.All(chain.Layers, l => Assert.Equal("qcow2", l.Format));
        Assert.All(chain.Layers, l => Assert.Equal(65536, l.ClusterSize));
        Assert.All(chain.Layers, l => Assert.False(l.DirtyFlag));
        Assert.All(chain.Layers, l => Assert.False(l.Corrupt));
        Assert.All(chain.Layers, l => Assert.True(l.ActualSize > 0));
        Assert.Same(chain.Layers[0], chain.Active);
        Assert.Equal("base.qcow2", chain.Base.Name);
    }

    [Fact]
    public void Given_a_chain_with_relative_and_absolute_backing_names_When_parsed_Then_each_kind_and_resolved_name_is_kept()
    {
        var chain = BackingChain.Parse(Samples.Read("info-chain.json"));

        // overlay2 was created with -b /tmp/lab-samples/overlay1.qcow2, overlay1 with -b base.qcow2.
        Assert.Equal("/tmp/lab-samples/overlay1.qcow2", chain[0].BackingFilename);
        Assert.Equal(BackingNameKind.Absolute, chain[0].BackingNameKind);
        Assert.Equal("base.qcow2", chain[1].BackingFilename);
        Assert.Equal("/tmp/lab-samples/base.qcow2", chain[1].FullBackingFilename);
        Assert.Equal(BackingNameKind.Relative, chain[1].BackingNameKind);
        Assert.Equal("qcow2", chain[1].BackingFormat);
        Assert.Null(chain[2].BackingFilename);
        Assert.Equal(BackingNameKind.None, chain[2].BackingNameKind);
        Assert.False(chain[2].HasBacking);
    }

    [Theory]
    [InlineData("/var/lib/images/base.qcow2", BackingNameKind.Absolute)]
    [InlineData("base.qcow2", BackingNameKind.Relative)]
    [InlineData("../images/base.qcow2", BackingNameKind.Relative)]
    [InlineData("sub/dir:with-colon.qcow2", BackingNameKind.Relative)]
    [InlineData("nbd:unix:/tmp/nbd.sock", BackingNameKind.Protocol)]
    [InlineData("json:{\"driver\":\"qcow2\"}", BackingNameKind.Protocol)]
    [InlineData("", BackingNameKind.None)]
    [InlineData(null, BackingNameKind.None)]
    public void Given_a_backing_name_When_classified_Then_relative_absolute_and_protocol_names_are_told_apart(string? name, BackingNameKind expected)
    {
        Assert.Equal(expected, ImageInfo.ClassifyBackingName(name));
    }

    [Fact]
    public void Given_info_of_an_image_with_an_internal_snapshot_When_parsed_Then_the_snapshot_list_matches_snapshot_l()
    {
        var info = ImageInfo.Parse(Samples.Read("info-single.json"));

        var snap = Assert.Single(info.Snapshots);
        Assert.Equal("1", snap.Id);
        Assert.Equal("before-overlays", snap.Name);
        Assert.Equal(0, snap.VmStateSize);
        Assert.Equal(TimeSpan.Zero, snap.VmClock);
        Assert.Equal(0, snap.Icount);
        Assert.True(snap.Date > new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero));
    }

    [Fact]
    public void Given_info_of_a_raw_image_When_parsed_Then_cluster_size_and_backing_are_absent()
    {
        var info = ImageInfo.Parse(Samples.Read("info-raw.json"));

        Assert.Equal("raw", info.Format);
        Assert.Equal(1048576, info.VirtualSize);
        Assert.Null(info.ClusterSize);
        Assert.Null(info.Corrupt);
        Assert.Empty(info.Snapshots);
        Assert.Equal(BackingNameKind.None, info.BackingNameKind);
    }

    [Fact]
    public void Given_the_map_of_a_chain_When_asked_which_depth_holds_a_byte_Then_each_pattern_range_names_its_layer()
    {
        var map = AllocationMap.Parse(Samples.Read("map-chain.json"));

        // 0xaa at [0,64k) in base, 0xbb at [64k,128k) in overlay1, 0xcc at [128k,192k) and zeroes at [192k,256k) in overlay2.
        Assert.Equal(2, map.DepthHolding(0));
        Assert.Equal(2, map.DepthHolding(65535));
        Assert.Equal(1, map.DepthHolding(65536));
        Assert.Equal(0, map.DepthHolding(131072));
        Assert.Equal(0, map.DepthHolding(196608));
        Assert.Null(map.DepthHolding(262144));
        Assert.Null(map.DepthHolding(4L * 1024 * 1024));
        Assert.Equal(4L * 1024 * 1024, map.Length);
    }

    [Fact]
    public void Given_the_map_of_a_chain_When_counting_bytes_per_depth_Then_data_and_zero_clusters_count_but_holes_do_not()
    {
        var map = AllocationMap.Parse(Samples.Read("map-chain.json"));

        Assert.Equal(131072, map.BytesAllocatedInActive);
        Assert.Equal(65536, map.BytesAllocatedAtDepth(1));
        Assert.Equal(65536, map.BytesAllocatedAtDepth(2));
        var zero = map.ExtentAt(200000)!;
        Assert.True(zero.Zero);
        Assert.False(zero.Data);
        Assert.Null(zero.Offset);
        Assert.NotNull(map.ExtentAt(0)!.Offset);
    }

    [Fact]
    public void Given_the_map_of_a_chain_When_counting_data_per_depth_Then_zero_clusters_and_holes_do_not_count()
    {
        var map = AllocationMap.Parse(Samples.Read("map-chain.json"));

        // The active layer allocates 128k: 64k of 0xcc and a 64k zero cluster; only the first is data.
        Assert.Equal(65536, map.BytesOfDataAtDepth(0));
        Assert.Equal(65536, map.BytesOfDataAtDepth(1));
        Assert.Equal(65536, map.BytesOfDataAtDepth(2));
        Assert.Equal(0, map.BytesOfDataAtDepth(3));
    }

    [Fact]
    public void Given_check_of_a_healthy_image_When_parsed_Then_it_is_clean()
    {
        var check = CheckResult.Parse(Samples.Read("check-clean.json"));

        Assert.True(check.IsClean);
        Assert.Equal(0, check.CheckErrors);
        Assert.Equal(393216, check.ImageEndOffset);
        Assert.Equal(64, check.TotalClusters);
        Assert.Equal(1, check.AllocatedClusters);
        Assert.EndsWith("overlay2.qcow2", check.Filename);
        Assert.EndsWith("clean", check.Summary);
    }

    [Fact]
    public void Given_check_of_an_image_with_a_zeroed_L1_entry_When_parsed_Then_two_leaks_and_their_messages_are_reported()
    {
        var check = CheckResult.Parse(Samples.Read("check-leaks.json"), 3, Samples.Read("check-leaks.stderr.txt"));

        Assert.False(check.IsClean);
        Assert.Equal(2, check.Leaks);
        Assert.Equal(0, check.Corruptions);
        Assert.Equal(3, check.ExitCode);
        Assert.Equal(2, check.Messages.Count);
        Assert.StartsWith("Leaked cluster 4", check.Messages[0]);
        Assert.Contains("2 leaked cluster(s)", check.Summary);
    }

    [Fact]
    public void Given_check_of_an_image_killed_with_lazy_refcounts_When_parsed_Then_corruptions_are_reported()
    {
        var check = CheckResult.Parse(Samples.Read("check-corrupt.json"), 2, Samples.Read("check-corrupt.stderr.txt"));

        Assert.False(check.IsClean);
        Assert.Equal(4, check.Corruptions);
        Assert.Equal(0, check.Leaks);
        Assert.Contains(check.Messages, m => m.StartsWith("ERROR cluster 5 refcount=0 reference=1", StringComparison.Ordinal));
    }

    [Fact]
    public void Given_compare_outputs_When_parsed_Then_identity_mismatch_offset_and_size_warnings_are_typed()
    {
        var same = CompareResult.Parse(Samples.Read("compare-identical.txt"), 0);
        Assert.True(same.Identical);
        Assert.Null(same.FirstMismatchOffset);
        Assert.False(same.SizeMismatch);

        var diff = CompareResult.Parse(Samples.Read("compare-mismatch.txt"), 1);
        Assert.False(diff.Identical);
        Assert.Equal(1048576, diff.FirstMismatchOffset);
        Assert.Equal("Content mismatch at offset 1048576!", diff.Message);

        var warned = CompareResult.Parse(Samples.Read("compare-size-warning.txt"), 0);
        Assert.True(warned.Identical);
        Assert.True(warned.SizeMismatch);

        var strictSize = CompareResult.Parse(Samples.Read("compare-strict-size.txt"), 1, strict: true);
        Assert.False(strictSize.Identical);
        Assert.True(strictSize.SizeMismatch);
        Assert.Null(strictSize.FirstMismatchOffset);

        var strictStatus = CompareResult.Parse(Samples.Read("compare-strict-status.txt"), 1, strict: true);
        Assert.False(strictStatus.Identical);
        Assert.Equal(0, strictStatus.FirstMismatchOffset);
        Assert.True(strictStatus.Strict);
    }

    [Fact]
    public void Given_measure_output_When_parsed_Then_required_and_fully_allocated_sizes_are_read()
    {
        var m = MeasureResult.Parse(Samples.Read("measure.json"));

        Assert.True(m.Required > 0);
        Assert.True(m.FullyAllocated > 4L * 1024 * 1024);
        Assert.Equal(0, m.Bitmaps);
    }

    [Fact]
    public void Given_json_without_required_fields_When_parsed_Then_a_format_error_names_the_field()
    {
        var e = Assert.Throws<FormatException>(() => ImageInfo.Parse("{\"format\":\"qcow2\"}"));
        Assert.Contains("filename", e.Message);
    }
}
