using LabKernel.Block;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.IntegrationTests.Block;
using LabKernel.Jobs;
using LabKernel.Processes;
using Xunit.Abstractions;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// A mirror's target storage fails under the job, per error policy: the NBD server serving it is stopped (SIGTERM, a
/// service stop) or killed (SIGKILL, the storage just vanishes), and the target's filesystem fills up (ENOSPC on a
/// small tmpfs). With <c>stop</c> the job pauses and, once the storage is back, resumes to an equal copy (or, after an
/// NBD outage, stalls as QEMU 7.2 was seen to, and a new mirror through a new node gives it); with <c>report</c> it
/// fails with QEMU's error and a new mirror onto the same target completes. The source never changes.
/// </summary>
[Trait(Lanes.Name, Lanes.FromTheStart)]
public sealed class StorageFaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long Data = 24 * M;
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Theory]
    [InlineData(false, BlockErrorPolicy.Stop)]
    [InlineData(true, BlockErrorPolicy.Stop)]
    [InlineData(false, BlockErrorPolicy.Report)]
    [InlineData(true, BlockErrorPolicy.Report)]
    public async Task Given_a_mirror_onto_NBD_storage_When_the_server_is_stopped_or_killed_Then_the_error_policy_decides_and_the_copy_ends_equal(bool kill, BlockErrorPolicy policy)
    {
        var source = await SourceAsync();
        var sourceHash = Fingerprint(source);
        // A raw target: what the server wrote before it died is in the host's page cache, so nothing acknowledged is
        // lost with the process (a qcow2 target would lose its unflushed metadata with a SIGKILL).
        var target = _lab.PathOf("target.raw");
        await QemuImg.Local.CreateAsync(target, "raw", Size);
        var sockets = LabPaths.CreatePrivateRuntimeFolder("lab-test-nbd");
        try
        {
            await using var export = await NbdExport.StartAsync(target, Path.Combine(sockets, "nbd.sock"), "tgt", "raw");
            var machine = await _lab.StartAsync(source);
            var block = machine.Block();
            // Requests wait one second for the server, then fail: the error policy is what is under test.
            await block.AddNbdNodeAsync(export, "tgt", TimeSpan.FromSeconds(1));

            var job = await block.StartMirrorAsync("disk0", new MirrorTarget.Node("tgt"), new MirrorOptions { Sync = MirrorSync.Full, Speed = 4 * M, OnTargetError = policy });
            await WaitPartWayAsync(job);
            await export.StopAsync(crash: kill);
            Assert.False(export.IsRunning);

            if (policy == BlockErrorPolicy.Stop)
            {
                // Stopped by its policy (a drain pauses a job briefly too, without an error).
                var stop = await job.WaitForErrorStopAsync(timeout: TimeSpan.FromMinutes(1));
                Assert.Equal("stop", stop.Action);
                Assert.Equal("src.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
                await export.StartAsync();
                await job.SetSpeedAsync(0);
                var atResume = await job.SampleAsync();
                var errorsAtResume = job.Errors.Count;
                await job.ResumeAsync();
                // Three outcomes are accepted, each checked for what it is; anything else fails. (a) The resumed job
                // copies the rest and reaches READY: its copy is whole, and cancelled (in sync) it is the target's
                // content. (b) It stalls, as QEMU 7.2 was seen to once its NBD connection had failed a request: still
                // "running" (not failed, not concluded), with not one byte copied in the 20 s after the resume although
                // the speed limit is off (24 MiB take well under a second). (c) Its retried request fails again on the
                // node's dead connection and on-target-error=stop pauses it again (a new "stop" error after the resume,
                // no byte copied), as seen in a clean-clone run. After (b) or (c) it is force-cancelled, which ends it
                // at once, and a new mirror through a freshly opened node gives the copy.
                string outcome;
                var stalled = false;
                try
                {
                    await job.WaitForReadyAsync(TimeSpan.FromSeconds(20));
                    var ready = await job.SampleAsync();
                    Assert.True(ready.Offset == ready.Length, $"READY with the copy incomplete: {ready}");
                    await job.CancelAsync();
                    outcome = $"the resumed job reached READY ({atResume.Offset} of {atResume.Length} bytes copied at the resume)";
                }
                catch (LabTimeoutException)
                {
                    stalled = true;
                    var now = await job.SampleAsync();
                    Assert.False(job.Completion.IsCompleted, $"the job concluded without becoming READY: {now}");
                    var pausedAgain = now.Status == JobStatus.Paused && job.Errors.Count > errorsAtResume && job.Errors.Skip(errorsAtResume).All(e => e.Action == "stop");
                    Assert.True(now.Status == JobStatus.Running || pausedAgain,
                        $"neither READY, the stall nor a new pause: the job is {now.Status} after the resume ({now}; errors: {string.Join(", ", job.Errors.Select(e => e.Action))}, {errorsAtResume} at the resume)");
                    Assert.True(now.Offset == atResume.Offset && now.Offset < now.Length,
                        $"neither READY nor the stall: the job copied from {atResume.Offset} to {now.Offset} of {now.Length} bytes in 20 s and did not finish");
                    var forced = System.Diagnostics.Stopwatch.StartNew();
                    await job.CancelAsync(force: true);
                    await job.WaitAsync(TimeSpan.FromMinutes(1));
                    Assert.True(forced.Elapsed < TimeSpan.FromSeconds(10), $"the forced cancel took {forced.Elapsed}");
                    outcome = $"the resumed job {(pausedAgain ? $"paused again ({job.Errors.Count - errorsAtResume} new stop errors)" : "stalled: running")}, still at {now.Offset} of {now.Length} bytes 20 s after the resume; force-cancelled in {forced.Elapsed.TotalSeconds:0.0} s, then mirrored again through a new node";
                }
                var ended = await job.WaitAsync(TimeSpan.FromMinutes(1));
                Assert.True(ended.Cancelled);
                if (stalled)
                {
                    await MirrorThroughNewNodeAsync(block, export);
                }
                output.WriteLine($"NBD server {(kill ? "killed" : "stopped")}, on-target-error=stop: {outcome}");
            }
            else
            {
                var failure = await Assert.ThrowsAsync<BlockJobFailedException>(() => job.WaitAsync(TimeSpan.FromMinutes(1)));
                Assert.Contains("Input/output error", failure.Error);
                Assert.Contains(failure.Errors, e => e.Action == "report");
                Assert.Equal("src.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
                await export.StartAsync();
                await MirrorThroughNewNodeAsync(block, export);
            }
            await block.RemoveNodeAsync("tgt");
            await export.StopAsync();
            await _lab.StopAllAsync();
        }
        finally
        {
            LabPaths.TryDeleteFolder(sockets);
        }

        Assert.Equal(sourceHash, Fingerprint(source));
        Assert.True((await QemuImg.Local.CompareAsync(source, target)).Identical, "the copy equals the source");
        await _lab.AssertAllCleanAsync();
    }

    [Theory]
    [InlineData(BlockErrorPolicy.Enospc)]
    [InlineData(BlockErrorPolicy.Stop)]
    [InlineData(BlockErrorPolicy.Report)]
    public async Task Given_a_mirror_target_on_a_filesystem_too_small_When_it_fills_up_Then_the_error_policy_decides_and_the_source_is_untouched(BlockErrorPolicy policy)
    {
        Assert.True(LabPaths.IsRoot, "this test mounts a small tmpfs and needs root (scripts/test runs as root)");
        var source = await SourceAsync();
        var sourceHash = Fingerprint(source);
        var small = _lab.PathOf("small");
        Directory.CreateDirectory(small);
        await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "-o", "size=8m,mode=0700", "lab-enospc", small]);
        try
        {
            var target = Path.Combine(small, "target.qcow2");
            var machine = await _lab.StartAsync(source);
            var block = machine.Block();
            var job = await block.StartMirrorAsync("disk0", new MirrorTarget.NewFile(target), new MirrorOptions { Sync = MirrorSync.Full, OnTargetError = policy });

            if (policy == BlockErrorPolicy.Report)
            {
                var failure = await Assert.ThrowsAsync<BlockJobFailedException>(() => job.WaitAsync(TimeSpan.FromMinutes(1)));
                Assert.Contains("No space left on device", failure.Error);
                Assert.Equal("src.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
            }
            else
            {
                // enospc and stop both pause on ENOSPC; the storage grows, and the job goes on where it stopped.
                // Stopped by its policy: not any pause (a clean-clone run saw the job paused, for a drain, before
                // QEMU's BLOCK_JOB_ERROR, and an empty error list at that moment).
                var stop = await job.WaitForErrorStopAsync(timeout: TimeSpan.FromMinutes(1));
                Assert.Equal("stop", stop.Action);
                await ProcessRunner.RunAsync("mount", ["-o", "remount,size=128m", small]);
                await job.ResumeAsync();
                await job.WaitForReadyAsync(TimeSpan.FromMinutes(1));
                await job.CancelAsync();
                await job.WaitAsync(TimeSpan.FromMinutes(1));
            }
            await _lab.StopAllAsync();

            Assert.Equal(sourceHash, Fingerprint(source));
            var check = await QemuImg.Local.CheckAsync(source);
            Assert.True(check.IsClean, check.Summary);
            if (policy != BlockErrorPolicy.Report)
            {
                Assert.True((await QemuImg.Local.CompareAsync(source, target)).Identical, "the copy equals the source once the storage had room");
                Assert.True((await QemuImg.Local.CheckAsync(target)).IsClean);
            }
        }
        finally
        {
            // QEMU first (a failed assertion leaves it holding the target), or the filesystem is busy and stays mounted.
            await _lab.StopAllAsync();
            await ProcessRunner.RunAsync("umount", [small], new ProcessOptions { Check = false });
        }
    }

    /// <summary>The storage is back: the old node (its connection failed) goes, a new one opens, a new mirror runs to READY and is cancelled (in sync).</summary>
    private static async Task MirrorThroughNewNodeAsync(BlockLayer block, NbdExport export)
    {
        await block.RemoveNodeAsync("tgt");
        await block.AddNbdNodeAsync(export, "tgt", TimeSpan.FromSeconds(1));
        await block.MirrorAsync("disk0", new MirrorTarget.Node("tgt"), new MirrorOptions { Sync = MirrorSync.Full });
    }

    /// <summary>src.qcow2 with <see cref="Data"/> of pattern 0x5a.</summary>
    private async Task<string> SourceAsync()
    {
        var source = _lab.PathOf("src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", Size);
        await QemuIo.WritePatternAsync(source, 0, Data, 0x5a);
        return source;
    }
}
