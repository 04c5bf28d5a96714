using LabKernel.Images;
using static LabKernel.IntegrationTests.Images.ImageWorkspace;

namespace LabKernel.IntegrationTests.Images;

public sealed class InternalSnapshotTests : IDisposable
{
    private readonly ImageWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Fact]
    public async Task Given_an_offline_image_When_a_snapshot_is_created_overwritten_applied_and_deleted_Then_data_and_list_follow()
    {
        var path = _ws.PathOf("disk.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", Size);
        await QemuIo.WritePatternAsync(path, 0, K64, 0x01);

        await QemuImg.Local.CreateSnapshotAsync(path, "before");
        await QemuIo.WritePatternAsync(path, 0, K64, 0x02);

        var snap = Assert.Single(await QemuImg.Local.ListSnapshotsAsync(path));
        Assert.Equal("before", snap.Name);
        Assert.Equal("1", snap.Id);
        Assert.Equal(0, snap.VmStateSize);
        Assert.True(snap.Date > DateTimeOffset.UnixEpoch);
        await _ws.AssertPatternAsync(path, 0, K64, 0x02);

        await QemuImg.Local.ApplySnapshotAsync(path, "before");
        await _ws.AssertPatternAsync(path, 0, K64, 0x01);

        await QemuImg.Local.DeleteSnapshotAsync(path, "before");
        Assert.Empty(await QemuImg.Local.ListSnapshotsAsync(path));
        Assert.True((await QemuImg.Local.CheckAsync(path)).IsClean);
    }

    [Fact]
    public async Task Given_no_such_snapshot_When_applied_Then_the_error_names_the_snapshot_subcommand()
    {
        var path = _ws.PathOf("disk.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", Size);

        var e = await Assert.ThrowsAsync<QemuImgException>(() => QemuImg.Local.ApplySnapshotAsync(path, "nope"));

        Assert.Equal("snapshot", e.Subcommand);
        Assert.Contains("-a nope", e.CommandLine);
    }
}

public sealed class ImageLockTests : IDisposable
{
    private readonly ImageWorkspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Fact]
    public async Task Given_an_image_held_open_for_writing_When_the_guard_runs_Then_it_says_the_image_is_in_use()
    {
        var path = _ws.PathOf("busy.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", Size);
        await QemuIo.WritePatternAsync(path, 0, K64, 0x42);

        await using (await ImageHolder.HoldAsync(_ws, path))
        {
            var e = await Assert.ThrowsAsync<ImageInUseException>(() => ImageLock.EnsureNotInUseAsync(path));
            Assert.Contains($"image {path} is in use by a running QEMU", e.Message);
            Assert.Contains("Failed to get shared \"write\" lock", e.StandardError);
            Assert.Equal(path, e.ImagePath);
            Assert.True(await ImageLock.IsInUseAsync(path));

            // Readers still work through force-share.
            Assert.Equal(Size, (await QemuImg.Local.InfoAsync(path)).VirtualSize);
            Assert.Equal(K64, (await QemuImg.Local.MapAsync(path)).BytesAllocatedInActive);
            Assert.True((await QemuImg.Local.CheckAsync(path)).IsClean);
            await _ws.AssertPatternAsync(path, 0, K64, 0x42);
        }

        Assert.False(await ImageLock.IsInUseAsync(path));
        await ImageLock.EnsureNotInUseAsync(path);
    }

    /// <summary>
    /// Notebook 05's "the base is locked after a snapshot" (003's conclusion 4): a backing file of a running QEMU
    /// refuses a writer, and the probe does not change it; the same file with nobody holding the chain lets the writer
    /// open it (the probe says so: null), which is what would refute the claim.
    /// </summary>
    [Fact]
    public async Task Given_a_backing_file_of_a_held_chain_When_a_writer_opens_it_Then_it_is_refused_and_without_the_holder_it_is_not()
    {
        var top = await _ws.CreateThreeLayerChainAsync();
        var middle = _ws.PathOf("overlay1.qcow2");
        var before = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(middle)));

        await using (await ImageHolder.HoldAsync(_ws, top))
        {
            var refusal = await ImageLock.WriterRefusalAsync(middle);
            Assert.NotNull(refusal);
            Assert.Contains("Failed to get \"write\" lock", refusal, StringComparison.Ordinal);
        }
        Assert.Null(await ImageLock.WriterRefusalAsync(middle));
        Assert.Equal(before, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(middle))));
        await Assert.ThrowsAsync<QemuImgException>(() => ImageLock.WriterRefusalAsync(_ws.PathOf("missing.qcow2")));
    }

    [Fact]
    public async Task Given_an_image_held_open_for_writing_When_qemu_img_writers_run_Then_each_fails_with_image_in_use()
    {
        var top = await _ws.CreateThreeLayerChainAsync();

        await using (await ImageHolder.HoldAsync(_ws, top))
        {
            var commit = await Assert.ThrowsAsync<ImageInUseException>(() => QemuImg.Local.CommitAsync(top));
            Assert.Equal("commit", commit.Subcommand);
            await Assert.ThrowsAsync<ImageInUseException>(() => QemuImg.Local.RebaseAsync(top, _ws.PathOf("base.qcow2"), new RebaseOptions { Unsafe = true }));
            await Assert.ThrowsAsync<ImageInUseException>(() => QemuImg.Local.CreateSnapshotAsync(top, "live"));
            await Assert.ThrowsAsync<ImageInUseException>(() => QemuIo.WritePatternAsync(top, 0, K64, 0x01));
        }

        await _ws.AssertPatternAsync(top, 0, K64, 0xaa);
        Assert.Equal(3, (await QemuImg.Local.GetBackingChainAsync(top)).Count);
    }
}
