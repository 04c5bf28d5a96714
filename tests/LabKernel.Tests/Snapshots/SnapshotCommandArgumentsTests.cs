using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Machines;
using LabKernel.Processes;
using LabKernel.Qmp;
using LabKernel.Snapshots;
using LabKernel.Tests.Block;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Snapshots;

/// <summary>
/// The arguments of the snapshot commands, built from typed records: the internal snapshot jobs
/// (<c>snapshot-save</c> with its <c>vmstate</c> node, <c>snapshot-delete</c> without one) and a checkpoint's
/// migration (<c>migrate-set-capabilities</c> switching on events, <c>migrate</c> to an <c>exec:</c> pipe).
/// </summary>
public sealed class SnapshotCommandArgumentsTests : IDisposable
{
    private static readonly string Top = "/i/top.qcow2";

    private readonly string _folder = Directory.CreateTempSubdirectory("lab-snapargs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static JsonNode Sent(ScriptedQmpPeer peer, string command) => peer.Received.Last(r => r.Command == command).Arguments;

    /// <summary>One disk; a snapshot job runs to its end as soon as it is started.</summary>
    private static async Task<ScriptedQmpPeer> SnapshotQemuAsync()
    {
        // The fake's active image stands for an overlay the lab made, as in every experiment.
        LabKernel.Host.LabFiles.MarkCreated(Top);
        ScriptedQmpPeer? peer = null;
        peer = await OneDiskQemu.StartAsync((cmd, args) =>
        {
            if (cmd is "snapshot-save" or "snapshot-delete")
            {
                var id = args["job-id"]!.GetValue<string>();
                peer!.AfterReply = () => peer.StatusAsync(id, "created", "running", "waiting", "pending", "concluded");
            }
            return null;
        });
        return peer;
    }

    [Fact]
    public async Task Given_an_internal_snapshot_saved_as_a_job_When_sent_Then_snapshot_save_names_the_job_tag_devices_and_vmstate_node()
    {
        await using var peer = await SnapshotQemuAsync();
        var block = new BlockLayer(peer.Client);

        await block.SaveInternalSnapshotAsync("t1", ["disk0"]);

        var sent = Sent(peer, "snapshot-save");
        var id = sent["job-id"]!.GetValue<string>();
        Assert.StartsWith("snapshot-save-", id, StringComparison.Ordinal);
        Assert.Equal(JsonNode.Parse($$"""{"job-id":"{{id}}","tag":"t1","devices":["disk0"],"vmstate":"disk0"}"""), sent, JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_an_internal_snapshot_deleted_as_a_job_When_sent_Then_snapshot_delete_has_no_vmstate()
    {
        await using var peer = await SnapshotQemuAsync();
        var block = new BlockLayer(peer.Client);

        await block.DeleteInternalSnapshotAsync("t1", ["disk0"]);

        var sent = Sent(peer, "snapshot-delete");
        var id = sent["job-id"]!.GetValue<string>();
        Assert.Equal(JsonNode.Parse($$"""{"job-id":"{{id}}","tag":"t1","devices":["disk0"]}"""), sent, JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_checkpoint_When_taken_Then_migration_events_are_switched_on_and_migrate_pipes_the_memory_into_the_file()
    {
        LabKernel.Host.LabFiles.MarkCreated(Top);
        var memory = Path.Combine(_folder, "it's memory.bin");
        var overlay = Path.Combine(_folder, "after.qcow2");
        ScriptedQmpPeer? peer = null;
        peer = await OneDiskQemu.StartAsync((cmd, _) =>
        {
            if (cmd == "migrate")
            {
                // The fake QEMU writes the memory file and reports the migration done, as exec:cat would.
                File.WriteAllBytes(memory, [1, 2, 3]);
                peer!.AfterReply = () => peer.EmitAsync("MIGRATION", new JsonObject { ["status"] = "completed" });
            }
            return null;
        });
        await using var _ = peer;
        var block = new BlockLayer(peer.Client);

        var checkpoint = await block.CheckpointAsync(memory, new Dictionary<string, string> { ["disk0"] = overlay }, TimeSpan.FromSeconds(10));

        Assert.Equal(3, checkpoint.MemoryBytes);
        Assert.Equal(JsonNode.Parse("""{"capabilities":[{"capability":"events","state":true}]}"""), Sent(peer, "migrate-set-capabilities"), JsonNode.DeepEquals);
        Assert.Equal(new JsonObject { ["uri"] = "exec:cat > " + ShellQuote.Quote(memory) }, Sent(peer, "migrate"), JsonNode.DeepEquals);
    }

    [Fact]
    public void Given_a_saved_state_file_When_the_incoming_migration_arguments_are_built_Then_they_hold_the_uri_alone()
    {
        // migrate-incoming is sent by a QEMU started with -incoming defer, which a unit test does not start: the
        // record is checked as QmpJson.Args hands it to the client.
        var uri = "exec:cat < " + ShellQuote.Quote("/s/state.bin");

        Assert.Equal(new JsonObject { ["uri"] = uri }, QmpJson.Args(new MigrateArguments(uri)), JsonNode.DeepEquals);
    }
}
