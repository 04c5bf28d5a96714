using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Jobs;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

public sealed class MirrorTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_an_existing_target_sharing_a_copy_of_the_backing_file_When_mirrored_with_sync_top_and_completed_Then_only_the_top_is_copied_and_the_disk_pivots()
    {
        // The -n case: the target overlay already exists on a copy of the source's backing file.
        var top = await _lab.ThreeLayersAsync();
        await QemuImg.Local.CommitAsync(_lab.PathOf("mid.qcow2"));
        await QemuImg.Local.RebaseAsync(top, _lab.PathOf("base.qcow2"), new RebaseOptions { Unsafe = true, BackingFormat = "qcow2" });
        File.Copy(_lab.PathOf("base.qcow2"), _lab.PathOf("copy-base.qcow2"));
        var target = _lab.PathOf("copy-top.qcow2");
        await QemuImg.Local.CreateAsync(target, "qcow2", null, new CreateOptions { BackingFile = _lab.PathOf("copy-base.qcow2"), BackingFormat = "qcow2" });
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.ExistingFile(target), new MirrorOptions { Sync = MirrorSync.Top, OnReady = ReadyAction.Complete });
        var result = await job.WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(result.Completed);
        Assert.Equal("copy-base.qcow2 <- copy-top.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        Assert.True((await QemuImg.Local.CompareAsync(top, target)).Identical);
        var sourceTop = (await QemuImg.Local.MapAsync(top)).BytesAllocatedInActive;
        var targetTop = (await QemuImg.Local.MapAsync(target)).BytesAllocatedInActive;
        Assert.Equal(M, sourceTop);
        Assert.Equal(sourceTop, targetTop);
        Assert.True(result.Length <= 2 * M, $"mirror copied {result.Length} bytes, expected about the top's {M}");
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_chain_When_mirrored_full_to_a_new_file_and_cancelled_at_ready_Then_the_source_stays_active_and_the_target_is_a_flat_copy()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();
        var target = _lab.PathOf("full.qcow2");

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.NewFile(target), new MirrorOptions { Sync = MirrorSync.Full, Granularity = 65536, BufferSize = 4 * M });
        await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
        await WriteLiveAsync(machine, "disk0", 5 * M, M, 0xee);
        await job.CancelAsync();
        var result = await job.WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(result.Cancelled);
        Assert.Equal("base.qcow2 <- mid.qcow2 <- top.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        Assert.True((await QemuImg.Local.CompareAsync(top, target)).Identical, "a mirror cancelled in READY is in sync");
        Assert.False((await QemuImg.Local.InfoAsync(target)).HasBacking);
        await AssertPatternAsync(target, 5 * M, M, 0xee);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_target_whose_first_write_fails_with_EIO_When_mirrored_with_on_target_error_stop_Then_the_job_pauses_and_resume_finishes_an_equal_copy()
    {
        var (source, target, block) = await StartWithFailingTargetAsync(failOnce: true);

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.Node("tgt"), new MirrorOptions { OnTargetError = BlockErrorPolicy.Stop });
        await job.WaitForErrorStopAsync(timeout: TimeSpan.FromMinutes(1));
        var paused = await job.SampleAsync();

        Assert.Equal("failed", paused.IoStatus);
        var error = Assert.Single(job.Errors);
        Assert.Equal(("write", "stop"), (error.Operation, error.Action));
        await job.ResumeAsync();
        await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
        await job.CancelAsync();
        var result = await job.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Single(result.Errors);
        await block.RemoveNodeAsync("tgt");
        await _lab.StopAllAsync();
        Assert.True((await QemuImg.Local.CompareAsync(source, target)).Identical);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_failing_target_When_mirrored_with_on_target_error_report_Then_the_job_fails_with_QEMUs_error()
    {
        var (_, _, block) = await StartWithFailingTargetAsync(failOnce: false);

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.Node("tgt"), new MirrorOptions { OnTargetError = BlockErrorPolicy.Report });
        var failure = await Assert.ThrowsAsync<BlockJobFailedException>(() => job.WaitAsync(TimeSpan.FromMinutes(1)));

        Assert.Contains("Input/output error", failure.Error);
        Assert.Equal("mirror", failure.Type);
        Assert.Contains(job.Errors, e => e.Action == "report");
        Assert.Empty(await block.QueryJobsAsync());
        Assert.Equal("src.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await block.RemoveNodeAsync("tgt");
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }

    /// <summary>A machine on an 8 MiB pattern, with a target node whose writes fail with EIO (blkdebug), once or always.</summary>
    private async Task<(string Source, string Target, BlockLayer Block)> StartWithFailingTargetAsync(bool failOnce)
    {
        var source = _lab.PathOf("src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", Size);
        await QemuIo.WritePatternAsync(source, 0, 8 * M, 0x5a);
        var target = _lab.PathOf("tgt.qcow2");
        await QemuImg.Local.CreateAsync(target, "qcow2", Size);
        var machine = await _lab.StartAsync(source);
        var block = machine.Block();
        await block.AddImageNodeAsync(target, "tgt", withBacking: false, inject: new BlkdebugError("write_aio", 5, Once: failOnce));
        return (source, target, block);
    }

    [Fact]
    public async Task Given_a_throttled_mirror_When_paused_Then_the_offset_stays_still_until_resumed()
    {
        var source = _lab.PathOf("src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", Size);
        await QemuIo.WritePatternAsync(source, 0, 32 * M, 0x77);
        var machine = await _lab.StartAsync(source);
        var block = machine.Block();

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.NewFile(_lab.PathOf("slow.qcow2")), new MirrorOptions { Speed = 4 * M, Granularity = 65536, BufferSize = M });
        await foreach (var p in job.SampleEveryAsync(TimeSpan.FromMilliseconds(50)))
        {
            if (p.Offset > 0)
            {
                break;
            }
        }
        await job.PauseAsync();
        var samples = new List<BlockJobProgress>();
        await foreach (var p in job.SampleEveryAsync(TimeSpan.FromMilliseconds(200)))
        {
            samples.Add(p);
            if (samples.Count == 6)
            {
                break;
            }
        }
        Assert.True(job.IsPaused);
        Assert.Single(samples.Select(s => s.Offset).Distinct());
        await job.ResumeAsync();
        await job.SetSpeedAsync(0);
        await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
        var ready = await job.SampleAsync();
        Assert.True(ready.Offset > samples[0].Offset);
        await job.CancelAsync();
        await job.WaitAsync(TimeSpan.FromMinutes(1));
        await _lab.StopAllAsync();
        Assert.True((await QemuImg.Local.CompareAsync(source, _lab.PathOf("slow.qcow2"))).Identical);
        await _lab.AssertAllCleanAsync();
    }
}
