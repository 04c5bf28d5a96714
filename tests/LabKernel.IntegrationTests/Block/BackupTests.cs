using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Machines;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

/// <summary>
/// Full and incremental <c>blockdev-backup</c> against a real QEMU with a disk and no guest: patterns written
/// through HMP qemu-io, each backup chain compared with the disk's content at its backup point.
/// </summary>
public sealed class BackupTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    /// <summary>
    /// A disk with 0xaa at [0,8M) running in QEMU, and a model: a second image the test writes offline with every
    /// pattern it writes live, so a copy of the model is the disk's expected content at any point.
    /// </summary>
    private async Task<(QemuMachine Machine, BlockLayer Block, string Model)> StartAsync()
    {
        var disk = _lab.PathOf("disk.qcow2");
        var model = _lab.PathOf("model.qcow2");
        foreach (var f in new[] { disk, model })
        {
            await QemuImg.Local.CreateAsync(f, "qcow2", Size);
            await QemuIo.WritePatternAsync(f, 0, 8 * M, 0xaa);
        }
        var machine = await _lab.StartAsync(disk);
        return (machine, machine.Block(), model);
    }

    private static async Task WriteAsync(QemuMachine machine, string model, long offset, long length, byte pattern)
    {
        await WriteLiveAsync(machine, "disk0", offset, length, pattern);
        await QemuIo.WritePatternAsync(model, offset, length, pattern);
    }

    /// <summary>The model's content now, as a file of its own (the expected content of the backup just taken).</summary>
    private async Task<string> ExpectedAsync(string model, string name)
    {
        var copy = _lab.PathOf(name);
        await QemuImg.Local.ConvertAsync(model, copy, "qcow2");
        return copy;
    }

    private static async Task AssertSameAsync(string expected, string actual)
    {
        var r = await QemuImg.Local.CompareAsync(expected, actual);
        Assert.True(r.Identical, $"{Path.GetFileName(actual)} differs from {Path.GetFileName(expected)}: {r.Message}");
    }

    [Fact]
    public async Task Given_a_disk_with_a_bitmap_When_backed_up_full_then_twice_incrementally_between_writes_Then_each_chain_is_the_disk_at_its_point_and_the_increments_copy_only_the_dirty_bytes()
    {
        var (machine, block, model) = await StartAsync();
        var options = new BackupOptions { Bitmap = "b0" };

        var full = await block.FullBackupAsync("disk0", _lab.PathOf("full.qcow2"), options);
        var expected0 = await ExpectedAsync(model, "expected0.qcow2");
        await WriteAsync(machine, model, 8 * M, 2 * M, 0xbb);
        await WriteAsync(machine, model, 0, M, 0xcc);
        var dirty1 = Assert.Single(await block.QueryBitmapsAsync("disk0"));
        var inc1 = await block.IncrementalBackupAsync("disk0", _lab.PathOf("inc1.qcow2"), full, options);
        var expected1 = await ExpectedAsync(model, "expected1.qcow2");
        var afterInc1 = Assert.Single(await block.QueryBitmapsAsync("disk0"));
        await WriteAsync(machine, model, 20 * M, M, 0xdd);
        await WriteAsync(machine, model, 8 * M, 64 * 1024, 0xee);
        var inc2 = await block.IncrementalBackupAsync("disk0", _lab.PathOf("inc2.qcow2"), inc1, options);
        var expected2 = await ExpectedAsync(model, "expected2.qcow2");

        Assert.Equal(("b0", "disk0", 3 * M), (dirty1.Name, dirty1.Node, dirty1.Count));
        Assert.Equal(0, afterInc1.Count);
        Assert.Equal(Size, full.BytesCopied);
        Assert.Equal(3 * M, inc1.BytesCopied);
        Assert.Equal(M + 64 * 1024, inc2.BytesCopied);
        Assert.Equal([full.Target, inc1.Target, inc2.Target], inc2.Chain);
        Assert.Equal(full.Target, inc1.Previous);
        Assert.True(inc1.Duration > TimeSpan.Zero);
        Assert.Empty(await block.QueryJobsAsync());
        Assert.Equal("disk.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        await AssertSameAsync(expected0, full.Target);
        await AssertSameAsync(expected1, inc1.Target);
        await AssertSameAsync(expected2, inc2.Target);
        await AssertSameAsync(model, _lab.PathOf("disk.qcow2"));
        Assert.Equal(3 * M, (await QemuImg.Local.MapAsync(inc1.Target)).BytesAllocatedInActive);
        Assert.Equal(M + 64 * 1024, (await QemuImg.Local.MapAsync(inc2.Target)).BytesAllocatedInActive);
        Assert.Equal(full.Target, (await QemuImg.Local.InfoAsync(inc1.Target)).BackingFilename);
        var restored = await Backups.RestoreAsync(inc1, _lab.PathOf("restored1.qcow2"));
        await AssertSameAsync(expected1, restored);
        Assert.False((await QemuImg.Local.InfoAsync(restored)).HasBacking);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_backups_taken_with_a_snapshot_in_the_same_transaction_When_the_disk_is_written_between_them_Then_each_frozen_layer_equals_its_backup_and_the_bitmap_follows_the_active_layer()
    {
        var (machine, block, model) = await StartAsync();

        var full = await block.FullBackupAsync("disk0", _lab.PathOf("full.qcow2"), new BackupOptions { Bitmap = "b0", SnapshotOverlay = _lab.PathOf("snap1.qcow2") });
        await WriteAsync(machine, model, 12 * M, 2 * M, 0x11);
        var moved = Assert.Single(await block.QueryBitmapsAsync("disk0"));
        var inc1 = await block.IncrementalBackupAsync("disk0", _lab.PathOf("inc1.qcow2"), full, new BackupOptions { Bitmap = "b0", SnapshotOverlay = _lab.PathOf("snap2.qcow2") });
        await WriteAsync(machine, model, 30 * M, M, 0x22);
        var chain = await block.QueryChainAsync("disk0");

        Assert.Equal(_lab.PathOf("disk.qcow2"), full.FrozenLayer);
        Assert.Equal(_lab.PathOf("snap1.qcow2"), inc1.FrozenLayer);
        Assert.Equal("disk.qcow2 <- snap1.qcow2 <- snap2.qcow2 (active)", chain.ToText());
        Assert.Equal(("b0", chain.Layers[1].NodeName, 2 * M), (moved.Name, moved.Node, moved.Count));
        Assert.Contains(await block.QueryBitmapsAsync("disk0"), b => b.Name == "b0" && b.Node == chain.Active.NodeName && b.Count == M);
        Assert.Equal(2 * M, inc1.BytesCopied);
        await _lab.StopAllAsync();
        await AssertSameAsync(full.FrozenLayer!, full.Target);
        await AssertSameAsync(inc1.FrozenLayer!, inc1.Target);
        await AssertPatternAsync(inc1.Target, 12 * M, 2 * M, 0x11);
        await AssertPatternAsync(inc1.Target, 30 * M, M, 0x00);
        await AssertSameAsync(model, _lab.PathOf("snap2.qcow2"));
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_no_such_bitmap_When_an_incremental_backup_is_asked_for_Then_a_one_line_error_names_it_and_nothing_is_made()
    {
        var (_, block, _) = await StartAsync();
        var full = await block.FullBackupAsync("disk0", _lab.PathOf("full.qcow2"), new BackupOptions { Bitmap = "b0" });

        var missing = await Assert.ThrowsAsync<MissingBitmapException>(() =>
            block.IncrementalBackupAsync("disk0", _lab.PathOf("inc1.qcow2"), full, new BackupOptions { Bitmap = "nope" }));
        // A snapshot taken on its own leaves the bitmap on the layer below: the error says where it went.
        await block.SnapshotAsync("disk0", _lab.PathOf("snap1.qcow2"));
        var left = await Assert.ThrowsAsync<MissingBitmapException>(() =>
            block.IncrementalBackupAsync("disk0", _lab.PathOf("inc1.qcow2"), full, new BackupOptions { Bitmap = "b0" }));
        await block.RemoveBitmapAsync("disk0", "b0");
        var removed = await Assert.ThrowsAsync<MissingBitmapException>(() => block.RemoveBitmapAsync("disk0", "b0"));

        Assert.Equal("nope", missing.Bitmap);
        Assert.DoesNotContain('\n', missing.Message);
        Assert.StartsWith("no dirty bitmap 'nope' on disk0: its active layer (node disk0) has bitmaps b0 on disk0", missing.Message);
        Assert.Contains("lower layer disk0", left.Message);
        Assert.DoesNotContain('\n', left.Message);
        Assert.Contains("no bitmaps", removed.Message);
        Assert.Empty(await block.QueryBitmapsAsync("disk0"));
        Assert.Empty(await block.QueryJobsAsync());
        Assert.False(File.Exists(_lab.PathOf("inc1.qcow2")));
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }
}
