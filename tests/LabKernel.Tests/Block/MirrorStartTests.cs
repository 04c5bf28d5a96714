using LabKernel.Block;
using LabKernel.Host;
using LabKernel.Images;

namespace LabKernel.Tests.Block;

/// <summary>
/// <see cref="MirrorStart"/>, the one place a mirror's start is decided for both backends: what libvirt's
/// <c>virDomainBlockCopy</c> is called with and the destination the lab makes for it, with real qemu-img (QEMU's side,
/// what <c>drive-mirror</c> is sent, is <see cref="LabBlockJobsTests"/> and <see cref="QmpArgumentsTests"/>).
/// </summary>
public sealed class MirrorStartTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-mirrorstart-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private async Task<string[]> ChainAsync()
    {
        var @base = Path.Combine(_folder, "base.qcow2");
        var top = Path.Combine(_folder, "top.qcow2");
        await QemuImg.Local.CreateAsync(@base, "qcow2", 64L << 20);
        await QemuImg.Local.CreateAsync(top, "qcow2", 64L << 20, new CreateOptions { BackingFile = @base, BackingFormat = "qcow2" });
        return [top, @base];
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Given_a_two_layer_chain_When_libvirts_copy_start_is_made_Then_the_lab_makes_the_destination_as_QEMU_would_and_passes_its_flags(bool shallow)
    {
        var chain = await ChainAsync();
        var destination = Path.Combine(_folder, "copy.qcow2");

        var start = await MirrorStart.LibvirtAsync(_ => Task.FromResult<ILabHost>(LocalHost.Instance), chain[0], chain, destination, MirrorStart.ForLibvirt(shallow), CancellationToken.None);

        var made = await QemuImg.Local.InfoAsync(destination);
        // Shallow: backed by the active layer's backing file, as drive-mirror sync=top mode=absolute-paths makes it;
        // full: a standalone image of the disk's size.
        Assert.Equal(shallow ? chain[1] : null, made.BackingFilename);
        Assert.Equal(64L << 20, made.VirtualSize);
        Assert.Equal(shallow ? "SHALLOW|REUSE_EXT|TRANSIENT_JOB" : "REUSE_EXT|TRANSIENT_JOB", start.FlagNames);
        Assert.Equal(shallow ? 7u : 6u, start.Flags);
        Assert.Contains($"<source file='{destination}'/>", start.Xml);
        Assert.True(LabFiles.IsLabMade(destination));
    }

    [Fact]
    public async Task Given_a_destination_that_exists_When_libvirts_copy_start_is_made_Then_it_is_refused_and_the_file_is_left_as_it_was()
    {
        var chain = await ChainAsync();
        var destination = Path.Combine(_folder, "theirs.qcow2");
        await File.WriteAllTextAsync(destination, "not the lab's");

        await Assert.ThrowsAsync<OverlayExistsException>(() => MirrorStart.LibvirtAsync(_ => Task.FromResult<ILabHost>(LocalHost.Instance), chain[0], chain, destination, MirrorStart.ForLibvirt(shallow: true), CancellationToken.None));

        Assert.Equal("not the lab's", await File.ReadAllTextAsync(destination));
        Assert.False(LabFiles.IsLabMade(destination));
    }

    [Fact]
    public async Task Given_a_destination_the_caller_made_When_libvirts_copy_start_is_made_Then_the_hypervisors_files_are_not_reached_and_the_xml_escapes_its_path()
    {
        var destination = Path.Combine(_folder, "their's & mine.qcow2");

        var start = await MirrorStart.LibvirtAsync(_ => throw new InvalidOperationException("the files were reached"), "/unused/top.qcow2", ["/unused/top.qcow2"], destination,
            new LibvirtCopyOptions { Shallow = false, ReuseExternal = true, DestinationExists = true }, CancellationToken.None);

        Assert.Equal("REUSE_EXT|TRANSIENT_JOB", start.FlagNames);
        Assert.Contains("<source file='" + _folder + "/their&apos;s &amp; mine.qcow2'/>", start.Xml);
        Assert.False(File.Exists(destination));
        Assert.False(LabFiles.IsLabMade(destination));
    }

    [Theory]
    [InlineData(true, MirrorSync.Top)]
    [InlineData(false, MirrorSync.Full)]
    public void Given_ILabBlocks_shallow_flag_When_mapped_for_QEMU_Then_a_new_file_with_the_matching_sync_comes_back(bool shallow, MirrorSync sync)
    {
        var (target, options) = MirrorStart.ForQemu("/runs/copy.qcow2", shallow);

        Assert.Equal(new MirrorTarget.NewFile("/runs/copy.qcow2"), target);
        Assert.Equal(sync, options.Sync);
    }
}
