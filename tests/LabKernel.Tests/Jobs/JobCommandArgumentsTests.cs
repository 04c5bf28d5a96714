using System.Text.Json.Nodes;
using LabKernel.Jobs;

namespace LabKernel.Tests.Jobs;

/// <summary>
/// The arguments of the commands a job sends once it runs (pause, resume, speed, complete, cancel, finalize,
/// dismiss), built from typed records: each reaches QEMU with exactly the members it had when they were written
/// by hand, the job commands naming the job <c>id</c> and the block-job commands naming it <c>device</c>.
/// </summary>
public sealed class JobCommandArgumentsTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    private static JsonNode Sent(ScriptedQmpPeer peer, string command) => peer.Received.Single(r => r.Command == command).Arguments;

    private static JsonArray Concluded(string id) =>
        [new JsonObject { ["id"] = id, ["type"] = "mirror", ["status"] = "concluded", ["current-progress"] = 100, ["total-progress"] = 100 }];

    [Fact]
    public async Task Given_a_running_mirror_When_paused_resumed_slowed_completed_and_cancelled_Then_each_command_names_the_job_as_QEMU_expects()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "blockdev-mirror":
                    p.AfterReply = () => p.StatusAsync("j1", "created", "running");
                    return new JsonObject();
                case "job-pause":
                    p.AfterReply = () => p.StatusAsync("j1", "paused");
                    return new JsonObject();
                case "job-resume":
                    p.AfterReply = () => p.StatusAsync("j1", "running");
                    return new JsonObject();
                case "block-job-cancel":
                    p.AfterReply = () => p.StatusAsync("j1", "waiting", "pending", "concluded");
                    return new JsonObject();
                case "query-jobs":
                    return Concluded("j1");
                default:
                    return new JsonObject();
            }
        });
        await using var job = await BlockJob.StartAsync(peer.Client, "j1", "mirror", "blockdev-mirror", new JsonObject { ["job-id"] = "j1" }, new BlockJobOptions { SampleOnEvents = false });

        await job.PauseAsync(Limit);
        await job.ResumeAsync(Limit);
        await job.SetSpeedAsync(1 << 20);
        await job.CompleteAsync();
        await job.CancelAsync(force: true);
        await job.WaitAsync(Limit);

        Assert.Equal(JsonNode.Parse("""{"id":"j1"}"""), Sent(peer, "job-pause"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"id":"j1"}"""), Sent(peer, "job-resume"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"device":"j1","speed":1048576}"""), Sent(peer, "block-job-set-speed"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"id":"j1"}"""), Sent(peer, "job-complete"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"device":"j1","force":true}"""), Sent(peer, "block-job-cancel"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"id":"j1"}"""), Sent(peer, "job-dismiss"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_cancel_without_force_When_sent_Then_force_false_is_still_spelled_out()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "drive-mirror":
                    p.AfterReply = () => p.StatusAsync("j2", "created", "running");
                    return new JsonObject();
                case "block-job-cancel":
                    p.AfterReply = () => p.StatusAsync("j2", "waiting", "pending", "concluded");
                    return new JsonObject();
                case "query-jobs":
                    return Concluded("j2");
                default:
                    return new JsonObject();
            }
        });
        await using var job = await BlockJob.StartAsync(peer.Client, "j2", "mirror", "drive-mirror", new JsonObject { ["job-id"] = "j2" }, new BlockJobOptions { SampleOnEvents = false });

        await ((ILabJob)job).CancelAsync();
        await job.WaitAsync(Limit);

        Assert.Equal(JsonNode.Parse("""{"device":"j2","force":false}"""), Sent(peer, "block-job-cancel"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_auto_finalize_off_When_the_lab_finalizes_and_dismisses_Then_both_name_the_job_id()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "block-commit":
                    p.AfterReply = () => p.StatusAsync("c9", "created", "running", "waiting", "pending");
                    return new JsonObject();
                case "job-finalize":
                    p.AfterReply = () => p.StatusAsync("c9", "concluded");
                    return new JsonObject();
                case "query-jobs":
                    return Concluded("c9");
                default:
                    return new JsonObject();
            }
        });

        await using var job = await BlockJob.StartAsync(peer.Client, "c9", "commit", "block-commit", new JsonObject { ["job-id"] = "c9" }, new BlockJobOptions { AutoFinalize = false, SampleOnEvents = false });
        await job.WaitAsync(Limit);

        Assert.Equal(JsonNode.Parse("""{"id":"c9"}"""), Sent(peer, "job-finalize"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"id":"c9"}"""), Sent(peer, "job-dismiss"), JsonNode.DeepEquals);
    }
}
