using System.Buffers.Binary;
using LabKernel.Images;
using LabKernel.Processes;
using static LabKernel.IntegrationTests.Images.ImageWorkspace;

namespace LabKernel.IntegrationTests.Images;

public sealed class CheckCompareConvertTests : IDisposable
{
    private readonly ImageWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Fact]
    public async Task Given_a_freshly_written_chain_When_checked_Then_every_layer_is_clean()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        foreach (var layer in new[] { top, _ws.PathOf("overlay1.qcow2"), _ws.PathOf("base.qcow2") })
        {
            var check = await QemuImg.Local.CheckAsync(layer);
            Assert.True(check.IsClean, check.Summary);
            Assert.Equal(0, check.ExitCode);
            Assert.True(check.ImageEndOffset > 0);
        }
    }

    [Fact]
    public async Task Given_an_image_whose_L1_entry_was_zeroed_When_checked_Then_leaks_are_reported_and_repair_fixes_them()
    {
        var path = _ws.PathOf("leaky.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", Size);
        await QemuIo.WritePatternAsync(path, 0, K64, 0x11);
        // Drop the only L1 entry: its L2 table and data cluster stay referenced by the refcounts but by nothing else.
        ZeroFirstL1Entry(path);

        var check = await QemuImg.Local.CheckAsync(path);

        Assert.False(check.IsClean);
        Assert.Equal(2, check.Leaks);
        Assert.Equal(0, check.Corruptions);
        Assert.Equal(3, check.ExitCode);
        Assert.Contains(check.Messages, m => m.StartsWith("Leaked cluster", StringComparison.Ordinal));

        var repaired = await QemuImg.Local.CheckAsync(path, new CheckOptions { Repair = CheckRepair.Leaks });
        Assert.Equal(2, repaired.LeaksFixed);
        Assert.True(repaired.IsClean, repaired.Summary);
        Assert.True((await QemuImg.Local.CheckAsync(path)).IsClean);
    }

    [Fact]
    public async Task Given_an_image_killed_mid_write_with_lazy_refcounts_When_checked_Then_corruptions_are_reported()
    {
        var path = _ws.PathOf("lazy.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", Size, new CreateOptions { Options = new Dictionary<string, string> { ["lazy_refcounts"] = "on" } });
        // As in qemu-iotests 039: qemu-io kills itself before the refcounts reach the disk.
        var killed = await ProcessRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 128k", "-c", "sigraise 9", path], new ProcessOptions { Check = false });
        Assert.NotEqual(0, killed.ExitCode);
        Assert.True((await QemuImg.Local.InfoAsync(path)).DirtyFlag);

        var check = await QemuImg.Local.CheckAsync(path);

        Assert.False(check.IsClean);
        Assert.True(check.Corruptions > 0, check.Summary);
        Assert.Equal(2, check.ExitCode);
    }

    [Fact]
    public async Task Given_a_missing_image_When_checked_Then_a_qemu_img_exception_is_raised_not_a_verdict()
    {
        var e = await Assert.ThrowsAsync<QemuImgException>(() => QemuImg.Local.CheckAsync(_ws.PathOf("nope.qcow2")));

        Assert.Equal("check", e.Subcommand);
        Assert.Contains("nope.qcow2", e.CommandLine);
    }

    [Fact]
    public async Task Given_a_chain_converted_to_a_standalone_image_When_compared_Then_they_are_identical()
    {
        var top = await _ws.CreateThreeLayerChainAsync();
        var flat = _ws.PathOf("flat.qcow2");

        await QemuImg.Local.ConvertAsync(top, flat, "qcow2");

        Assert.False((await QemuImg.Local.InfoAsync(flat)).HasBacking);
        var same = await QemuImg.Local.CompareAsync(top, flat);
        Assert.True(same.Identical, same.Message);
        Assert.Null(same.FirstMismatchOffset);
        await _ws.AssertPatternAsync(flat, K64, K64, 0xbb);
    }

    [Fact]
    public async Task Given_a_converted_copy_with_one_changed_cluster_When_compared_Then_the_first_differing_offset_is_reported()
    {
        var top = await _ws.CreateThreeLayerChainAsync();
        var copy = _ws.PathOf("copy.qcow2");
        await QemuImg.Local.ConvertAsync(top, copy, "qcow2");
        await QemuIo.WritePatternAsync(copy, 1024 * 1024, 4096, 0x5a);

        var diff = await QemuImg.Local.CompareAsync(top, copy);

        Assert.False(diff.Identical);
        Assert.Equal(1024 * 1024, diff.FirstMismatchOffset);
    }

    [Fact]
    public async Task Given_images_equal_in_content_but_not_in_size_When_compared_strictly_Then_only_strict_mode_says_they_differ()
    {
        var small = _ws.PathOf("small.qcow2");
        var large = _ws.PathOf("large.qcow2");
        await QemuImg.Local.CreateAsync(small, "qcow2", Size);
        await QemuImg.Local.CreateAsync(large, "qcow2", 2 * Size);

        var normal = await QemuImg.Local.CompareAsync(small, large);
        var strict = await QemuImg.Local.CompareAsync(small, large, new CompareOptions { Strict = true });

        Assert.True(normal.Identical);
        Assert.True(normal.SizeMismatch);
        Assert.False(strict.Identical);
        Assert.True(strict.SizeMismatch);
    }

    [Fact]
    public async Task Given_a_chain_When_converted_compressed_and_to_raw_Then_contents_match_and_measure_predicts_the_size()
    {
        var top = await _ws.CreateThreeLayerChainAsync();
        var compressed = _ws.PathOf("compressed.qcow2");
        var raw = _ws.PathOf("flat.raw");

        var measured = await QemuImg.Local.MeasureAsync(top, "qcow2");
        await QemuImg.Local.ConvertAsync(top, compressed, "qcow2", new ConvertOptions { Compress = true, Options = new Dictionary<string, string> { ["cluster_size"] = "65536" } });
        await QemuImg.Local.ConvertAsync(top, raw, "raw");

        Assert.True((await QemuImg.Local.CompareAsync(top, compressed)).Identical);
        Assert.True((await QemuImg.Local.CompareAsync(top, raw, new CompareOptions { SecondFormat = "raw" })).Identical);
        Assert.Equal("raw", (await QemuImg.Local.InfoAsync(raw, format: "raw")).Format);
        Assert.True(new FileInfo(compressed).Length <= measured.Required, $"{new FileInfo(compressed).Length} > {measured.Required}");
        Assert.True(measured.FullyAllocated >= Size);
        Assert.True((await QemuImg.Local.MeasureNewAsync(Size, "qcow2")).FullyAllocated >= Size);
    }

    private static void ZeroFirstL1Entry(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        Span<byte> header = stackalloc byte[8];
        f.Position = 40; // qcow2 header: l1_table_offset, big-endian u64
        f.ReadExactly(header);
        f.Position = (long)BinaryPrimitives.ReadUInt64BigEndian(header);
        f.Write(new byte[8]);
    }
}
