using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// libvirtd restarted (SIGTERM, then started again) in the middle of a block job: QEMU and its job go on, and the
/// lab's own connection, domain and job objects reconnect by themselves and see the job through.
/// </summary>
[Collection(LibvirtCollection.Name)]
[Trait(Lanes.Name, Lanes.BeforeLibvirtLanes)]
public sealed class LibvirtdRestartTests(LibvirtFixture fx, ITestOutputHelper output)
{
    private const long M = 1024 * 1024;

    [Fact]
    public async Task Given_a_copy_job_When_libvirtd_restarts_Then_the_lab_reconnects_and_the_pivot_completes_it()
    {
        var d = fx.Domain;
        var source = fx.PathOf("restart-src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", 64 * M);
        await QemuIo.WritePatternAsync(source, 0, 16 * M, 0x3c);
        var dest = fx.PathOf("restart-dest.qcow2");
        await d.AttachDiskAsync(source, "vdd");
        Exception? failure = null;
        try
        {
            await using var job = await d.Block.StartCopyAsync("vdd", dest);
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
            var generation = fx.Connection.Generation;

            var (stopped, started) = await RestartLibvirtdAsync();
            output.WriteLine($"libvirtd {stopped} stopped, {started} started");

            // The same objects the test held before the restart: the pivot goes through a connection opened again.
            await job.PivotAsync();
            var r = await job.WaitAsync(TimeSpan.FromMinutes(1));
            output.WriteLine($"after the restart: {r}; events {string.Join(" -> ", job.Events.Select(e => e.Status))}");
            Assert.True(r.Completed);
            Assert.True(fx.Connection.Generation > generation, "the connection was opened again");
            Assert.True(fx.Connection.IsAlive);
            Assert.Equal(dest, (await d.Block.QueryChainAsync("vdd")).Source);
            Assert.Equal(DomainState.Running, await d.GetStateAsync());
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            await DetachKeepingFailureAsync(d, "vdd", failure);
        }
        Assert.True((await QemuImg.Local.CompareAsync(source, dest)).Identical);
        Assert.True((await QemuImg.Local.CheckAsync(dest)).IsClean);
    }

    /// <summary>
    /// The order that failed once in CI: the test's pivot went through the renewed connection and ended the job before
    /// the job's own recovery asked libvirt for it. The hook holds the recovery until the pivot has returned, so the
    /// job is always gone when it asks; the job must still end Completed, not "ended while libvirtd was away".
    /// </summary>
    [Fact]
    public async Task Given_a_copy_job_pivoted_after_a_libvirtd_restart_before_the_job_recovers_Then_it_ends_completed()
    {
        var d = fx.Domain;
        var source = fx.PathOf("restart-order-src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", 64 * M);
        await QemuIo.WritePatternAsync(source, 0, 8 * M, 0x4d);
        var dest = fx.PathOf("restart-order-dest.qcow2");
        await d.AttachDiskAsync(source, "vdf");
        Exception? failure = null;
        try
        {
            await using var job = await d.Block.StartCopyAsync("vdf", dest);
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
            var pivoted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            job.BeforeRecoverySample = () => pivoted.Task.WaitAsync(TimeSpan.FromMinutes(2));

            await RestartLibvirtdAsync();
            await fx.Connection.ReconnectAsync();
            await job.PivotAsync();
            pivoted.SetResult();

            var r = await job.WaitAsync(TimeSpan.FromMinutes(1));
            output.WriteLine($"pivot before the recovery's sample: {r}; outcome {job.Outcome}; events {string.Join(" -> ", job.Events.Select(e => e.Status))}");
            Assert.True(r.Completed);
            Assert.False(r.Cancelled);
            Assert.Equal(dest, (await d.Block.QueryChainAsync("vdf")).Source);
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            await DetachKeepingFailureAsync(d, "vdf", failure);
        }
        Assert.True((await QemuImg.Local.CompareAsync(source, dest)).Identical);
    }

    [Fact]
    public async Task Given_QMP_through_libvirt_opened_before_a_libvirtd_restart_When_a_mirror_runs_after_it_Then_QEMUs_events_still_drive_the_job()
    {
        var d = fx.Domain;
        var source = fx.PathOf("restart-qmp-src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", 64 * M);
        await QemuIo.WritePatternAsync(source, 0, 8 * M, 0x5e);
        var copy = fx.PathOf("restart-qmp-copy.qcow2");
        await d.AttachDiskAsync(source, "vde");
        Exception? failure = null;
        try
        {
            await using var qmp = await LibvirtQmp.ConnectAsync(d);
            var block = await LibvirtQmp.BlockLayerAsync(d, qmp);

            await RestartLibvirtdAsync();

            // READY and the conclusion come only as QEMU events: they reach the job through the renewed registration.
            await using var job = await block.StartMirrorAsync("vde", new LabKernel.Block.MirrorTarget.NewFile(copy), new LabKernel.Block.MirrorOptions { Sync = LabKernel.Block.MirrorSync.Full });
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
            await job.CancelAsync();
            var result = await job.WaitAsync(TimeSpan.FromMinutes(1));
            output.WriteLine($"after the restart, through QMP passthrough: {result}");
            Assert.True(result.Cancelled);
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            await DetachKeepingFailureAsync(d, "vde", failure);
        }
        Assert.True((await QemuImg.Local.CompareAsync(source, copy)).Identical);
    }

    /// <summary>
    /// The disk detached after the test; when the test failed and libvirtd is unreachable, the detach's own failure
    /// must not hide the test's (a restart that left no libvirtd showed only as "waiting for libvirtd" here).
    /// </summary>
    private static async Task DetachKeepingFailureAsync(LibvirtDomain d, string target, Exception? failure)
    {
        try
        {
            await d.DetachDiskAsync(target);
        }
        catch (Exception) when (failure is not null)
        {
        }
    }

    /// <summary>
    /// SIGTERM to the running libvirtd, wait for it to exit, start it again (scripts/libvirtd-up) and wait until the pid
    /// file names a new, live libvirtd; returns both pids.
    /// </summary>
    private static async Task<(int Stopped, int Started)> RestartLibvirtdAsync()
    {
        var pid = int.Parse((await File.ReadAllTextAsync("/run/libvirtd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await ProcessRunner.RunAsync("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await Poll.UntilAsync(_ => Task.FromResult((!Directory.Exists($"/proc/{pid}"), "")), $"libvirtd (pid {pid}) to exit", TimeSpan.FromSeconds(60));
        await LibvirtFixture.EnsureLibvirtdAsync();
        var started = await Poll.UntilAsync(_ =>
        {
            var text = File.Exists("/run/libvirtd.pid") ? File.ReadAllText("/run/libvirtd.pid").Trim() : "";
            var now = int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : 0;
            var live = now != 0 && now != pid && File.Exists($"/proc/{now}/comm") && File.ReadAllText($"/proc/{now}/comm").Trim() == "libvirtd";
            return Task.FromResult((live, now, $"/run/libvirtd.pid says '{text}'"));
        }, $"a new libvirtd (not pid {pid}) in /run/libvirtd.pid after scripts/libvirtd-up", TimeSpan.FromSeconds(30));
        return (pid, started);
    }
}
