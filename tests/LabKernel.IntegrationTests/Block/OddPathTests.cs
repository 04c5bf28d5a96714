using LabKernel.Images;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

/// <summary>
/// Image paths with the characters QEMU's option syntax and shells trip on (a comma, quotes, a space, non-ASCII):
/// on QEMU's command line, in QMP, in qcow2 backing-file headers and in qemu-img, the chain still works.
/// </summary>
public sealed class OddPathTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_images_named_with_a_comma_quotes_a_space_and_non_ASCII_When_started_snapshotted_and_committed_Then_every_pattern_is_where_it_belongs()
    {
        const string odd = "odd, 'q\"uote' été ";
        var top = await _lab.ThreeLayersAsync(odd);
        Assert.Contains(",", top);
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        var overlay = _lab.PathOf(odd + "snap, 1.qcow2");
        var chain = await block.SnapshotAsync("disk0", overlay);
        Assert.Equal(overlay, chain.Active.Filename);
        await WriteLiveAsync(machine, "disk0", 3 * M, M, 0xdd);
        chain = await block.CommitAsync("disk0", top: _lab.PathOf(odd + "mid.qcow2"), @base: _lab.PathOf(odd + "base.qcow2"));
        Assert.Equal(3, chain.Count);
        var (_, headers, agreement) = await block.CheckChainAgreementAsync("disk0");
        Assert.True(agreement.Agrees, agreement.Summary);
        Assert.Equal(overlay, headers.Layers[0].Filename);

        await _lab.StopAllAsync();
        await AssertPatternAsync(_lab.PathOf(odd + "base.qcow2"), M, M, 0xbb);
        await AssertPatternAsync(overlay, 3 * M, M, 0xdd);
        Assert.True((await QemuImg.Local.CheckAsync(overlay)).IsClean);
        await _lab.AssertAllCleanAsync();
    }
}
