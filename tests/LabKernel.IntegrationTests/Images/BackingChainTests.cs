using LabKernel.Images;
using static LabKernel.IntegrationTests.Images.ImageWorkspace;

namespace LabKernel.IntegrationTests.Images;

public sealed class BackingChainTests : IDisposable
{
    private readonly ImageWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Fact]
    public async Task Given_a_three_layer_chain_When_info_reads_the_backing_chain_Then_it_sees_three_layers_with_their_sizes()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        var chain = await QemuImg.Local.GetBackingChainAsync(top);

        Assert.Equal(3, chain.Count);
        Assert.Equal("base.qcow2 <- overlay1.qcow2 <- overlay2.qcow2 (active)", chain.ToText());
        Assert.Equal([_ws.PathOf("overlay2.qcow2"), _ws.PathOf("overlay1.qcow2"), _ws.PathOf("base.qcow2")], chain.Layers.Select(l => l.Filename));
        Assert.All(chain.Layers, l => Assert.Equal(Size, l.VirtualSize));
        Assert.All(chain.Layers, l => Assert.Equal(K64, l.ClusterSize));
        Assert.All(chain.Layers, l => Assert.True(l.ActualSize >= K64, $"{l.Name} allocates {l.ActualSize}"));
        Assert.Equal(BackingNameKind.Absolute, chain[0].BackingNameKind);
        Assert.Equal(BackingNameKind.Relative, chain[1].BackingNameKind);
        Assert.Equal("base.qcow2", chain[1].BackingFilename);
        Assert.Equal(_ws.PathOf("base.qcow2"), chain[1].FullBackingFilename);
        Assert.True(chain.Compare(chain.Layers.Select(l => l.Filename).ToList()).Agrees);
    }

    [Fact]
    public async Task Given_a_three_layer_chain_When_mapped_Then_each_pattern_is_held_by_the_layer_that_wrote_it()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        var map = await QemuImg.Local.MapAsync(top);

        Assert.Equal(2, map.DepthHolding(0));
        Assert.Equal(1, map.DepthHolding(K64));
        Assert.Equal(0, map.DepthHolding(2 * K64));
        Assert.Null(map.DepthHolding(3 * K64));
        Assert.Equal(K64, map.BytesAllocatedInActive);
        await _ws.AssertPatternAsync(top, 0, K64, 0xaa);
        await _ws.AssertPatternAsync(top, K64, K64, 0xbb);
        await _ws.AssertPatternAsync(top, 2 * K64, K64, 0xcc);
        await _ws.AssertPatternAsync(top, 3 * K64, K64, 0x00);
    }

    [Fact]
    public async Task Given_a_three_layer_chain_When_overlay1_is_committed_into_base_and_overlay2_rebased_onto_base_Then_patterns_read_back_from_the_right_layers()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await QemuImg.Local.CommitAsync(_ws.PathOf("overlay1.qcow2"));
        // Same content below overlay2 now, so only the header needs to change.
        await QemuImg.Local.RebaseAsync(top, "base.qcow2", new RebaseOptions { Unsafe = true, BackingFormat = "qcow2" });

        var chain = await QemuImg.Local.GetBackingChainAsync(top);
        Assert.Equal("base.qcow2 <- overlay2.qcow2 (active)", chain.ToText());
        Assert.Equal(BackingNameKind.Relative, chain.Active.BackingNameKind);
        var map = await QemuImg.Local.MapAsync(top);
        Assert.Equal(1, map.DepthHolding(K64));
        Assert.Equal(0, map.DepthHolding(2 * K64));
        await _ws.AssertPatternAsync(_ws.PathOf("base.qcow2"), 0, K64, 0xaa);
        await _ws.AssertPatternAsync(_ws.PathOf("base.qcow2"), K64, K64, 0xbb);
        await _ws.AssertPatternAsync(top, K64, K64, 0xbb);
        await _ws.AssertPatternAsync(top, 2 * K64, K64, 0xcc);
        // The committed overlay was emptied (no -d).
        Assert.Equal(0, (await QemuImg.Local.MapAsync(_ws.PathOf("overlay1.qcow2"))).BytesAllocatedInActive);
    }

    [Fact]
    public async Task Given_a_three_layer_chain_When_overlay2_is_committed_with_base_named_Then_base_holds_every_pattern()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await QemuImg.Local.CommitAsync(top, new CommitOptions { Base = _ws.PathOf("base.qcow2") });

        await _ws.AssertPatternAsync(_ws.PathOf("base.qcow2"), 0, K64, 0xaa);
        await _ws.AssertPatternAsync(_ws.PathOf("base.qcow2"), K64, K64, 0xbb);
        await _ws.AssertPatternAsync(_ws.PathOf("base.qcow2"), 2 * K64, K64, 0xcc);
    }

    [Fact]
    public async Task Given_overlay2_on_overlay1_When_safely_rebased_onto_base_Then_overlay1s_data_is_copied_into_overlay2()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await QemuImg.Local.RebaseAsync(top, _ws.PathOf("base.qcow2"));

        var map = await QemuImg.Local.MapAsync(top);
        Assert.Equal(0, map.DepthHolding(K64));
        Assert.Equal(2 * K64, map.BytesAllocatedInActive);
        await _ws.AssertPatternAsync(top, 0, K64, 0xaa);
        await _ws.AssertPatternAsync(top, K64, K64, 0xbb);
        await _ws.AssertPatternAsync(top, 2 * K64, K64, 0xcc);
    }

    [Fact]
    public async Task Given_overlay2_on_overlay1_When_unsafely_rebased_onto_base_Then_only_the_header_changes_and_overlay1s_data_is_lost()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await QemuImg.Local.RebaseAsync(top, _ws.PathOf("base.qcow2"), new RebaseOptions { Unsafe = true });

        Assert.Equal(2, (await QemuImg.Local.GetBackingChainAsync(top)).Count);
        Assert.Equal(K64, (await QemuImg.Local.MapAsync(top)).BytesAllocatedInActive);
        var lost = await QemuIo.VerifyPatternAsync(top, K64, K64, 0xbb);
        Assert.False(lost.Matches);
        Assert.Contains("Pattern verification failed", lost.Message);
        await _ws.AssertPatternAsync(top, K64, K64, 0x00);
    }

    [Fact]
    public async Task Given_a_chain_When_the_backing_file_is_removed_safely_Then_the_image_stands_alone_with_all_data()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await QemuImg.Local.RebaseAsync(top, null);

        var info = await QemuImg.Local.InfoAsync(top);
        Assert.False(info.HasBacking);
        await _ws.AssertPatternAsync(top, 0, K64, 0xaa);
        await _ws.AssertPatternAsync(top, K64, K64, 0xbb);
    }

    [Fact]
    public async Task Given_a_missing_image_When_info_runs_Then_the_error_carries_the_subcommand_command_line_and_stderr()
    {
        var missing = _ws.PathOf("missing.qcow2");

        var e = await Assert.ThrowsAsync<QemuImgException>(() => QemuImg.Local.InfoAsync(missing));

        Assert.Equal("info", e.Subcommand);
        Assert.Contains("qemu-img info --output=json -U " + missing, e.CommandLine);
        Assert.Contains("No such file or directory", e.StandardError);
        Assert.Contains(missing, e.Message);
        Assert.IsType<LabKernel.Processes.ProcessFailedException>(e.InnerException);
    }

    [Fact]
    public async Task Given_no_size_and_no_backing_file_When_creating_Then_the_call_is_refused()
    {
        await Assert.ThrowsAsync<LabUsageException>(() => QemuImg.Local.CreateAsync(_ws.PathOf("x.qcow2"), "qcow2"));
    }

    [Fact]
    public async Task Given_extra_create_options_When_creating_Then_info_reports_them()
    {
        var path = _ws.PathOf("small-clusters.qcow2");

        await QemuImg.Local.CreateAsync(path, "qcow2", Size, new CreateOptions { ClusterSize = 4096, Options = new Dictionary<string, string> { ["lazy_refcounts"] = "on" } });

        var info = await QemuImg.Local.InfoAsync(path);
        Assert.Equal(4096, info.ClusterSize);
        Assert.Equal(Size, info.VirtualSize);
        Assert.Equal("qcow2", info.Format);
    }
}
