using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Jobs;
using LabKernel.Journal;

namespace LabKernel.Tests.Jobs;

public sealed class BlockJobTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    private static JsonArray Jobs(string id, string status, long offset, long length, string? error = null)
    {
        var job = new JsonObject { ["id"] = id, ["type"] = "stream", ["status"] = status, ["current-progress"] = offset, ["total-progress"] = length };
        if (error is not null)
        {
            job["error"] = error;
        }
        return [job];
    }

    [Fact]
    public async Task Given_a_stream_job_whose_events_arrive_before_the_commands_reply_When_awaited_Then_it_concludes_and_is_dismissed()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, args) =>
        {
            switch (cmd)
            {
                case "block-stream":
                    // QEMU may emit the first events before the command's own return.
                    await p.StatusAsync("s1", "created", "running");
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("s1", "waiting", "pending");
                        await p.EmitAsync("BLOCK_JOB_COMPLETED", new { type = "stream", device = "s1", len = 4096L, offset = 4096L, speed = 0 });
                        await p.StatusAsync("s1", "concluded");
                    };
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("s1", "concluded", 4096, 4096);
                case "query-block-jobs":
                    return new JsonArray();
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "s1", "stream", "block-stream", new JsonObject { ["job-id"] = "s1" }, new BlockJobOptions { SampleOnEvents = false });
        var result = await job.WaitAsync(Limit);

        Assert.Equal(4096, result.Offset);
        Assert.Equal(4096, result.Length);
        Assert.False(result.Cancelled);
        Assert.Equal(JobStatus.Null, job.Status);
        Assert.Equal(["block-stream", "query-jobs", "job-dismiss"], peer.Commands.Skip(1));
        Assert.Equal("s1", peer.Received.Last().Arguments["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_a_job_that_concludes_with_an_error_When_awaited_Then_it_fails_with_QEMUs_error_read_before_dismiss()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "blockdev-mirror":
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("m1", "created", "running");
                        await p.EmitAsync("BLOCK_JOB_ERROR", new { device = "m1", operation = "write", action = "report" });
                        await p.StatusAsync("m1", "aborting", "concluded");
                    };
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("m1", "concluded", 65536, 1048576, "Input/output error");
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "m1", "mirror", "blockdev-mirror", new JsonObject(), new BlockJobOptions { SampleOnEvents = false });
        var e = await Assert.ThrowsAsync<BlockJobFailedException>(() => job.WaitAsync(Limit));

        Assert.Equal("Input/output error", e.Error);
        Assert.Equal("mirror job m1 failed: Input/output error", e.Message);
        Assert.Equal(("write", "report"), (e.Errors.Single().Operation, e.Errors.Single().Action));
        var commands = peer.Commands.ToList();
        Assert.True(commands.IndexOf("query-jobs") < commands.IndexOf("job-dismiss"));
    }

    [Theory]
    [InlineData(ReadyAction.Complete, "job-complete", false, true)]
    [InlineData(ReadyAction.Cancel, "block-job-cancel", true, false)]
    public async Task Given_a_mirror_When_it_reaches_ready_Then_the_requested_action_is_issued_and_reflected_in_the_result(ReadyAction action, string expected, bool cancelled, bool completed)
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "drive-mirror":
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("m2", "created", "running");
                        await p.EmitAsync("BLOCK_JOB_READY", new { type = "mirror", device = "m2", len = 100L, offset = 100L, speed = 0 });
                        await p.StatusAsync("m2", "ready");
                    };
                    return new JsonObject();
                case "job-complete":
                case "block-job-cancel":
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("m2", "waiting", "pending");
                        await p.EmitAsync("BLOCK_JOB_COMPLETED", new { type = "mirror", device = "m2", len = 100L, offset = 100L, speed = 0 });
                        await p.StatusAsync("m2", "concluded");
                    };
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("m2", "concluded", 100, 100);
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "m2", "mirror", "drive-mirror", new JsonObject(), new BlockJobOptions { OnReady = action, SampleOnEvents = false });
        var result = await job.WaitAsync(Limit);

        Assert.Contains(expected, peer.Commands);
        Assert.True(job.HasBeenReady);
        Assert.Equal(cancelled, result.Cancelled);
        Assert.Equal(completed, result.Completed);
    }

    /// <summary>
    /// 03's "the job survived the outage without an error" is <c>Result.Errors.Count == 0</c>: a mirror that met a
    /// write error on its target (paused by <c>on-target-error=stop</c>, resumed) and still reached READY carries it.
    /// </summary>
    [Fact]
    public async Task Given_a_mirror_that_met_a_target_error_and_still_reached_ready_When_cancelled_Then_its_result_carries_the_error()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "blockdev-mirror":
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("m3", "created", "running");
                        await p.EmitAsync("BLOCK_JOB_ERROR", new { device = "m3", operation = "write", action = "stop" });
                        await p.StatusAsync("m3", "paused", "running");
                        await p.EmitAsync("BLOCK_JOB_READY", new { type = "mirror", device = "m3", len = 100L, offset = 100L, speed = 0 });
                        await p.StatusAsync("m3", "ready");
                    };
                    return new JsonObject();
                case "block-job-cancel":
                    p.AfterReply = async () =>
                    {
                        await p.StatusAsync("m3", "waiting", "pending");
                        await p.EmitAsync("BLOCK_JOB_COMPLETED", new { type = "mirror", device = "m3", len = 100L, offset = 100L, speed = 0 });
                        await p.StatusAsync("m3", "concluded");
                    };
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("m3", "concluded", 100, 100);
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "m3", "mirror", "blockdev-mirror", new JsonObject(), new BlockJobOptions { OnReady = ReadyAction.Cancel, SampleOnEvents = false });
        var result = await job.WaitAsync(Limit);

        Assert.True(result.Cancelled);
        Assert.Equal(("write", "stop"), (result.Errors.Single().Operation, result.Errors.Single().Action));
    }

    [Fact]
    public async Task Given_auto_finalize_off_When_the_job_is_pending_Then_the_lab_finalizes_it()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "block-commit":
                    p.AfterReply = () => p.StatusAsync("c1", "created", "running", "waiting", "pending");
                    return new JsonObject();
                case "job-finalize":
                    p.AfterReply = () => p.StatusAsync("c1", "concluded");
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("c1", "concluded", 1, 1);
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "c1", "commit", "block-commit", new JsonObject(), new BlockJobOptions { AutoFinalize = false, SampleOnEvents = false });
        await job.WaitAsync(Limit);

        Assert.Equal(["block-commit", "job-finalize", "query-jobs", "job-dismiss"], peer.Commands.Skip(1));
    }

    [Fact]
    public async Task Given_a_running_job_When_paused_sampled_and_watched_Then_the_state_and_progress_come_from_query_jobs_and_events()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "block-stream":
                    p.AfterReply = () => p.StatusAsync("s2", "created", "running");
                    return new JsonObject();
                case "job-pause":
                    p.AfterReply = () => p.StatusAsync("s2", "paused");
                    return new JsonObject();
                case "job-resume":
                    p.AfterReply = () => p.StatusAsync("s2", "running", "waiting", "pending", "concluded");
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("s2", "paused", 300, 1000);
                case "query-block-jobs":
                    return new JsonArray(new JsonObject { ["device"] = "s2", ["offset"] = 300, ["len"] = 1000, ["io-status"] = "ok" });
                default:
                    return new JsonObject();
            }
        });
        await using var job = await BlockJob.StartAsync(peer.Client, "s2", "stream", "block-stream", new JsonObject());
        var watched = new List<BlockJobProgress>();
        var watcher = Task.Run(async () =>
        {
            await foreach (var p in job.WatchAsync())
            {
                watched.Add(p);
            }
        });

        await job.PauseAsync(Limit);
        var sample = await job.SampleAsync();
        await job.ResumeAsync(Limit);
        await job.WaitAsync(Limit);
        await watcher.WaitAsync(Limit);

        Assert.Equal(JobStatus.Paused, sample.Status);
        Assert.Equal((300, 1000, "ok"), (sample.Offset, sample.Length, sample.IoStatus));
        Assert.Equal(0.3, sample.Fraction, 3);
        Assert.Contains(watched, w => w.Status == JobStatus.Paused && w.Offset == 300);
        Assert.Equal(JobStatus.Null, watched[^1].Status);
    }

    /// <summary>
    /// A job an error policy stopped, resumed while its target still fails: QEMU runs it and its error policy pauses it
    /// again before the answer to <c>job-resume</c> is read (here the peer sends both status changes before its reply).
    /// The resume still sees it run: the wait is registered before the command goes out. (A clean-clone run timed out
    /// here waiting 30 s for a "running" the job had already passed.)
    /// </summary>
    [Fact]
    public async Task Given_a_job_that_runs_and_is_paused_again_before_job_resume_answers_When_resumed_Then_the_resume_sees_it_run()
    {
        var started = new TaskCompletionSource<BlockJob>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "block-stream":
                    p.AfterReply = () => p.StatusAsync("s3", "created", "running", "paused");
                    return new JsonObject();
                case "job-resume":
                    // Both changes reach the job (its watchers see them) before the reply goes out.
                    var job = await started.Task;
                    var seen = job.WatchAsync().GetAsyncEnumerator();
                    await p.StatusAsync("s3", "running", "paused");
                    var ranAgain = false;
                    while (await seen.MoveNextAsync())
                    {
                        ranAgain |= seen.Current.Status == JobStatus.Running;
                        if (ranAgain && seen.Current.Status == JobStatus.Paused)
                        {
                            break;
                        }
                    }
                    await seen.DisposeAsync();
                    return new JsonObject();
                case "query-jobs":
                    return Jobs("s3", "paused", 300, 1000);
                default:
                    return new JsonObject();
            }
        });
        await using var job = await BlockJob.StartAsync(peer.Client, "s3", "stream", "block-stream", new JsonObject(), new BlockJobOptions { SampleOnEvents = false });
        await job.WaitForStatusAsync(s => s == JobStatus.Paused, Limit, "paused");
        started.SetResult(job);

        await job.ResumeAsync(Limit);

        Assert.Equal(JobStatus.Paused, job.Last.Status);
    }

    [Fact]
    public async Task Given_qemu_goes_away_When_a_job_is_awaited_Then_it_fails_at_once_naming_the_job_and_the_lost_connection()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync((p, cmd, _) => Task.FromResult<JsonNode?>(cmd switch
        {
            "query-jobs" => Jobs("x", "running", 300, 1000),
            "query-block-jobs" => new JsonArray(),
            _ => new JsonObject(),
        }));
        await using var job = await BlockJob.StartAsync(peer.Client, "x", "stream", "block-stream", new JsonObject());
        await job.SampleAsync();

        // The peer closes its end, as a killed QEMU does; the client is not disposed by the test.
        peer.HangUp();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<BlockJobInterruptedException>(() => job.WaitAsync(Limit));
        Assert.True(clock.Elapsed < Limit / 2, $"reported after {clock.Elapsed}");
        Assert.Equal(("x", "stream", 300L), (e.JobId, e.Type, e.LastProgress.Offset));
        Assert.IsType<LabKernel.Qmp.QmpDisconnectedException>(e.InnerException);
        Assert.Equal("stream job x interrupted at 300 of 1000 bytes: QEMU closed the QMP connection", e.Message);
    }

    [Fact]
    public async Task Given_qemu_reports_device_not_found_When_the_block_layer_starts_a_job_Then_unknown_node()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync((p, cmd, _) => Task.FromResult<JsonNode?>(cmd switch
        {
            "query-block" => JsonNode.Parse("""[{"device":"","qdev":"/machine/peripheral/disk0-dev/virtio-backend","inserted":{"node-name":"disk0","image":{"filename":"/i/top.qcow2","format":"qcow2","backing-filename":"base.qcow2","backing-image":{"filename":"/i/base.qcow2","format":"qcow2"}}}}]"""),
            "query-named-block-nodes" => JsonNode.Parse("""[{"node-name":"disk0","drv":"qcow2","file":"/i/top.qcow2"},{"node-name":"#block123","drv":"qcow2","file":"/i/base.qcow2"},{"node-name":"#block099","drv":"file","file":"/i/base.qcow2"}]"""),
            "blockdev-mirror" => ScriptedQmpPeer.Error("DeviceNotFound", "Cannot find device='nosuch' nor node-name='nosuch'"),
            _ => new JsonObject(),
        }));
        var block = new BlockLayer(peer.Client);

        var chain = await block.QueryChainAsync("disk0");
        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartMirrorAsync("disk0", new MirrorTarget.Node("nosuch")));

        Assert.Equal("base.qcow2 <- top.qcow2 (active)", chain.ToText());
        Assert.Equal(["disk0", "#block123"], chain.Layers.Select(l => l.NodeName));
        Assert.Equal("nosuch", e.Name);
        Assert.IsType<LabKernel.Qmp.QmpErrorException>(e.InnerException);
        await Assert.ThrowsAsync<InvalidCommitRangeException>(() => block.StartCommitAsync("disk0", "base.qcow2", "/i/base.qcow2"));
        await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.QueryChainAsync("disk9"));
    }

    [Fact]
    public void Given_journal_entries_When_rendered_as_text_Then_command_reply_and_failure_show()
    {
        var journal = new LabJournal();
        journal.Begin("qmp", """{"execute":"block-commit","arguments":{"device":"disk0"}}""").Complete("{}");
        journal.Begin("qmp", """{"execute":"blockdev-del","arguments":{"node-name":"x<y"}}""").Fail("GenericError: Failed to find node");

        var text = journal.Entries.ToText();

        Assert.Contains("block-commit", text);
        Assert.Contains("FAIL", text);
        Assert.Contains("→ GenericError: Failed to find node", text);
        Assert.Equal(3, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Single(journal.Entries.OfChannel("qmp"), e => !e.Succeeded);
    }
}
