using LabKernel.Integrity;
using LabKernel.IntegrationTests.Block;
using LabKernel.Processes;

namespace LabKernel.IntegrationTests.Integrity;

/// <summary>
/// Notebook 06's two filesystem checks on a layer read offline, refuted on real ext4 images (mkfs.ext4, debugfs,
/// qemu-img; no guest): "the frozen snapshot's filesystem needed no recovery" reads ext4's needs_recovery flag, and
/// "both filesystems check clean" is `e2fsck -fn` after the journal replay.
/// </summary>
public sealed class OfflineFilesystemFaultTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    /// <summary>A 32 MiB ext4 with a journal and one file, changed by <paramref name="debugfsRequest"/> (if any), as qcow2.</summary>
    private async Task<string> Ext4ImageAsync(string name, string? debugfsRequest)
    {
        var content = _lab.PathOf($"{name}-content");
        Directory.CreateDirectory(content);
        await File.WriteAllTextAsync(Path.Combine(content, "num.txt"), "1\n2\n3\n");
        var raw = _lab.PathOf($"{name}.raw");
        await ProcessRunner.RunAsync("truncate", ["-s", "32M", raw]);
        await ProcessRunner.RunAsync("mkfs.ext4", ["-q", "-F", "-d", content, raw]);
        if (debugfsRequest is not null)
        {
            await ProcessRunner.RunAsync("debugfs", ["-w", "-R", debugfsRequest, raw]);
        }
        var image = _lab.PathOf($"{name}.qcow2");
        await ProcessRunner.RunAsync("qemu-img", ["convert", "-O", "qcow2", raw, image]);
        return image;
    }

    [Fact]
    public async Task Given_an_ext4_layer_left_with_needs_recovery_When_read_offline_Then_it_needed_journal_recovery_and_a_clean_one_did_not()
    {
        var dirty = await Ext4ImageAsync("dirty", "feature needs_recovery");
        var clean = await Ext4ImageAsync("clean", null);

        await using (var reader = await OfflineLayerReader.OpenAsync(dirty, _lab.Folder))
        {
            Assert.True(reader.NeededJournalRecovery);
            Assert.Equal("1\n2\n3\n", System.Text.Encoding.ASCII.GetString(await reader.ReadFileAsync("/num.txt")));
        }
        await using (var reader = await OfflineLayerReader.OpenAsync(clean, _lab.Folder))
        {
            Assert.False(reader.NeededJournalRecovery);
        }
    }

    [Fact]
    public async Task Given_an_ext4_layer_whose_root_inode_is_cleared_When_checked_offline_Then_e2fsck_finds_it_not_clean_and_an_intact_one_clean()
    {
        var broken = await Ext4ImageAsync("broken", "clri <2>");
        var intact = await Ext4ImageAsync("intact", null);

        await using (var reader = await OfflineLayerReader.OpenAsync(broken, _lab.Folder))
        {
            var (isClean, summary) = await reader.CheckFilesystemAsync();
            Assert.False(isClean, summary);
        }
        await using (var reader = await OfflineLayerReader.OpenAsync(intact, _lab.Folder))
        {
            var (isClean, summary) = await reader.CheckFilesystemAsync();
            Assert.True(isClean, summary);
        }
    }
}
