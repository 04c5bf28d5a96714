using System.Text.Json.Nodes;
using LabKernel.Jobs;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Jobs;

/// <summary>
/// A QEMU job's waits run on the clock it was started with (a fake one here): a limit passes without real waiting
/// and names the job, what was awaited and the last progress; an event that comes in time ends the wait.
/// </summary>
public sealed class BlockJobWaitTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>A QEMU whose job starts and runs; the test emits whatever comes next.</summary>
    private static Task<ScriptedQmpPeer> RunningJobAsync(string id) => ScriptedQmpPeer.StartAsync((p, cmd, _) =>
    {
        if (cmd == "blockdev-mirror")
        {
            p.AfterReply = () => p.StatusAsync(id, "created", "running");
        }
        return Task.FromResult<JsonNode?>(new JsonObject());
    });

    private static async Task<BlockJob> StartAsync(ScriptedQmpPeer peer, string id, TimeProvider time)
    {
        var job = await BlockJob.StartAsync(peer.Client, id, "mirror", "blockdev-mirror", new JsonObject { ["job-id"] = id }, new BlockJobOptions { SampleOnEvents = false }, time);
        // Running, on a clock that has not moved: no limit can have passed.
        await job.WaitForStatusAsync(s => s == JobStatus.Running, Limit, "running");
        return job;
    }

    [Fact]
    public async Task Given_a_mirror_that_never_gets_ready_When_the_limit_passes_on_its_clock_Then_the_wait_fails_naming_the_job_and_its_last_progress_and_not_before()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w1");
        await using var job = await StartAsync(peer, "w1", time);

        var wait = job.WaitForReadyAsync(Limit);
        time.Advance(Limit - TimeSpan.FromTicks(1));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Equal("mirror job w1 to become ready", e.Awaited);
        Assert.Equal(Limit, e.Limit);
        Assert.StartsWith("timed out after 60 s waiting for mirror job w1 to become ready: w1 running 0/0", e.Message);
    }

    [Fact]
    public async Task Given_a_mirror_When_READY_comes_before_the_limit_Then_the_wait_ends_ready()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w2");
        await using var job = await StartAsync(peer, "w2", time);

        var wait = job.WaitForReadyAsync(Limit);
        time.Advance(Limit / 2);
        await peer.StatusAsync("w2", "ready");
        await wait;

        Assert.True(job.HasBeenReady);
        Assert.Equal(JobStatus.Ready, job.Status);
    }

    [Fact]
    public async Task Given_a_job_that_does_not_end_When_the_limit_passes_Then_the_wait_names_the_end()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w3");
        await using var job = await StartAsync(peer, "w3", time);

        var wait = job.WaitAsync(Limit);
        time.Advance(Limit);

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Equal("mirror job w3 to end", e.Awaited);
    }

    [Fact]
    public async Task Given_a_status_wait_that_timed_out_When_the_status_comes_later_Then_a_new_wait_sees_it()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w4");
        await using var job = await StartAsync(peer, "w4", time);

        var paused = job.WaitForStatusAsync(s => s == JobStatus.Paused, TimeSpan.FromSeconds(30), "paused");
        time.Advance(TimeSpan.FromSeconds(30));
        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => paused);
        Assert.Equal("mirror job w4 to reach paused", e.Awaited);

        await peer.StatusAsync("w4", "paused");
        Assert.Equal(JobStatus.Paused, await job.WaitForStatusAsync(s => s == JobStatus.Paused, TimeSpan.FromSeconds(30), "paused"));
    }

    [Fact]
    public async Task Given_a_job_paused_for_a_drain_before_its_error_policy_stops_it_When_waiting_for_the_stop_Then_the_wait_ends_only_at_the_error()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w5");
        await using var job = await StartAsync(peer, "w5", time);

        var stop = job.WaitForErrorStopAsync(timeout: Limit);
        // A drain pauses the job with no error: a wait for "paused" would end here, with no error to read.
        await peer.StatusAsync("w5", "paused");
        await job.WaitForStatusAsync(s => s == JobStatus.Paused, Limit, "paused");
        Assert.False(stop.IsCompleted);
        await peer.StatusAsync("w5", "running");
        // Then the target fails: QEMU sends the error, then the pause it causes.
        await peer.EmitAsync("BLOCK_JOB_ERROR", new { device = "w5", operation = "write", action = "stop" });
        await peer.StatusAsync("w5", "paused");

        var error = await stop;
        Assert.Equal(("write", "stop"), (error.Operation, error.Action));
        Assert.Equal(JobStatus.Paused, job.Status);
    }

    [Fact]
    public async Task Given_a_job_whose_error_comes_while_it_is_paused_When_waiting_for_a_new_stop_after_the_errors_seen_Then_only_the_new_error_ends_it()
    {
        var time = new FakeTimeProvider();
        await using var peer = await RunningJobAsync("w6");
        await using var job = await StartAsync(peer, "w6", time);
        await peer.EmitAsync("BLOCK_JOB_ERROR", new { device = "w6", operation = "write", action = "stop" });
        await peer.StatusAsync("w6", "paused");
        await job.WaitForErrorStopAsync(timeout: Limit);

        var again = job.WaitForErrorStopAsync(afterErrors: 1, timeout: Limit);
        await Task.Yield();
        Assert.False(again.IsCompleted);
        await peer.EmitAsync("BLOCK_JOB_ERROR", new { device = "w6", operation = "read", action = "stop" });

        Assert.Equal("read", (await again).Operation);
        var never = job.WaitForErrorStopAsync(afterErrors: 2, timeout: Limit);
        time.Advance(Limit);
        var timedOut = await Assert.ThrowsAsync<LabTimeoutException>(() => never);
        Assert.Contains("a stop by its error policy", timedOut.Awaited);
    }
}
