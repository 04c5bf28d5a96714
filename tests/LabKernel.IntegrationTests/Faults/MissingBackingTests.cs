using LabKernel.Images;
using LabKernel.IntegrationTests.Block;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>A chain whose middle layer is missing at start: one line naming the missing file, nothing written.</summary>
public sealed class MissingBackingTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_a_chain_whose_backing_file_is_missing_When_a_machine_starts_on_it_Then_a_one_line_error_names_the_file_and_nothing_changes()
    {
        var top = await _lab.ThreeLayersAsync();
        var mid = _lab.PathOf("mid.qcow2");
        var @base = _lab.PathOf("base.qcow2");
        File.Move(mid, mid + ".away");
        var before = (Fingerprint(top), Fingerprint(@base));

        var e = await Assert.ThrowsAnyAsync<LabException>(() => _lab.StartAsync(top));

        Assert.Contains("QEMU exited (code 1) while starting. stderr: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("mid.qcow2", e.Message[e.Message.IndexOf("stderr: ", StringComparison.Ordinal)..], StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(before, (Fingerprint(top), Fingerprint(@base)));
        Assert.False(File.Exists(mid));

        // qemu-img says the same of the chain, as its own typed error.
        var info = await Assert.ThrowsAnyAsync<QemuImgException>(() => QemuImg.Local.GetBackingChainAsync(top));
        Assert.Equal("info", info.Subcommand);
        Assert.Contains("mid.qcow2", info.Message, StringComparison.Ordinal);
    }
}
