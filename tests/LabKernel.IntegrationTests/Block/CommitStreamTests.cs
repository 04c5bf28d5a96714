using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Jobs;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

public sealed class CommitStreamTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_three_layers_When_mid_is_committed_into_base_Then_base_holds_both_patterns_and_the_chain_skips_mid()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        var chain = await block.CommitAsync("disk0", top: "mid.qcow2", @base: "base.qcow2");

        Assert.Equal("base.qcow2 <- top.qcow2 (active)", chain.ToText());
        var (_, headers, agreement) = await block.CheckChainAgreementAsync("disk0");
        Assert.True(agreement.Agrees, agreement.Summary);
        Assert.Equal(2, headers.Count);
        await _lab.StopAllAsync();
        await AssertPatternAsync(_lab.PathOf("base.qcow2"), 0, M, 0xaa);
        await AssertPatternAsync(_lab.PathOf("base.qcow2"), M, M, 0xbb);
        await AssertPatternAsync(top, 2 * M, M, 0xcc);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_three_layers_and_a_live_write_When_the_active_layer_is_committed_and_completed_Then_the_disk_pivots_to_base_holding_every_pattern()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();
        await WriteLiveAsync(machine, "disk0", 3 * M, M, 0xdd);

        await using var job = await block.StartCommitAsync("disk0");
        var updates = new List<BlockJobProgress>();
        var watching = Task.Run(async () =>
        {
            await foreach (var p in job.WatchAsync())
            {
                updates.Add(p);
            }
        });
        await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
        Assert.True(job.HasBeenReady);
        Assert.Equal(JobStatus.Ready, job.Status);
        await job.CompleteAsync();
        var result = await job.WaitAsync(TimeSpan.FromMinutes(2));

        await watching.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.Completed);
        Assert.False(result.Cancelled);
        Assert.Equal(result.Length, result.Offset);
        Assert.Contains(updates, u => u.Status == JobStatus.Ready && u.Offset == u.Length && u.Length > 0 && u.IoStatus == "ok");
        Assert.Equal(JobStatus.Null, updates[^1].Status);
        var chain = await block.QueryChainAsync("disk0");
        Assert.Equal("base.qcow2 (active)", chain.ToText());
        Assert.Empty(await block.QueryJobsAsync());
        await _lab.StopAllAsync();
        var b = _lab.PathOf("base.qcow2");
        await AssertPatternAsync(b, 0, M, 0xaa);
        await AssertPatternAsync(b, M, M, 0xbb);
        await AssertPatternAsync(b, 2 * M, M, 0xcc);
        await AssertPatternAsync(b, 3 * M, M, 0xdd);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_an_active_commit_at_ready_When_it_is_cancelled_Then_the_overlay_stays_active()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        await using var job = await block.StartCommitAsync("disk0", options: new BlockCommitOptions { OnReady = ReadyAction.Cancel });
        var result = await job.WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(result.Cancelled);
        Assert.True(job.HasBeenReady);
        Assert.Equal("base.qcow2 <- mid.qcow2 <- top.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        await AssertPatternAsync(top, 2 * M, M, 0xcc);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_three_layers_When_streamed_to_the_top_Then_the_top_holds_everything_and_has_no_backing()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var before = await QemuImg.Local.MapAsync(top);

        var chain = await machine.Block().StreamAsync("disk0");

        Assert.Equal("top.qcow2 (active)", chain.ToText());
        await _lab.StopAllAsync();
        var after = await QemuImg.Local.MapAsync(top);
        Assert.Equal(2, before.DepthHolding(0));
        Assert.Equal(1, before.DepthHolding(M));
        Assert.Equal(0, after.DepthHolding(0));
        Assert.Equal(0, after.DepthHolding(M));
        Assert.Equal(0, after.DepthHolding(2 * M));
        Assert.Equal(3 * M, after.BytesAllocatedInActive);
        await AssertPatternAsync(top, 0, M, 0xaa);
        await AssertPatternAsync(top, M, M, 0xbb);
        Assert.False((await QemuImg.Local.InfoAsync(top)).HasBacking);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_three_layers_When_streamed_down_to_base_Then_only_mid_moves_up_and_base_stays_the_backing()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);

        var chain = await machine.Block().StreamAsync("disk0", @base: "base.qcow2");

        Assert.Equal("base.qcow2 <- top.qcow2 (active)", chain.ToText());
        await _lab.StopAllAsync();
        var after = await QemuImg.Local.MapAsync(top);
        Assert.Equal(1, after.DepthHolding(0));
        Assert.Equal(0, after.DepthHolding(M));
        Assert.Equal(0, after.DepthHolding(2 * M));
        Assert.Equal(2 * M, after.BytesAllocatedInActive);
        await AssertPatternAsync(top, 0, M, 0xaa);
        await AssertPatternAsync(top, M, M, 0xbb);
        await _lab.AssertAllCleanAsync();
    }
}
