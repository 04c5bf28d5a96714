using System.Text.Json.Nodes;
using LabKernel.Snapshots;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Snapshots;

/// <summary>
/// QEMU emits the source's MIGRATION "completed" event before its migration thread moves the run state from
/// finish-migrate to postmigrate; a `cont` in between fails "Migration is not finalized yet" (seen in notebook 06's
/// checkpoint on QEMU 7.2). The lab waits for the run state before it sends `cont`.
/// </summary>
public sealed class MigrationSettleTests
{
    [Fact]
    public async Task Given_the_source_still_in_finish_migrate_after_the_completed_event_When_waiting_to_settle_Then_cont_goes_only_once_it_left_that_state()
    {
        var looks = 0;
        await using var peer = await ScriptedQmpPeer.StartAsync((p, cmd, _) => Task.FromResult<JsonNode?>(cmd switch
        {
            "query-status" => new JsonObject { ["status"] = ++looks < 3 ? "finish-migrate" : "postmigrate", ["running"] = false },
            "cont" => looks < 3 ? ScriptedQmpPeer.Error("GenericError", "Migration is not finalized yet") : new JsonObject(),
            _ => new JsonObject(),
        }));

        await SystemCheckpoints.WaitSourceSettledAsync(peer.Client, TimeSpan.FromSeconds(10), CancellationToken.None);
        await peer.Client.ExecuteAsync("cont");

        Assert.Equal(3, looks);
        Assert.Equal(["query-status", "query-status", "query-status", "cont"], peer.Commands.Where(c => c != "qmp_capabilities"));
    }

    [Fact]
    public async Task Given_a_source_that_never_leaves_finish_migrate_When_waiting_to_settle_Then_the_error_names_the_run_state()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync((p, cmd, _) => Task.FromResult<JsonNode?>(new JsonObject { ["status"] = "finish-migrate", ["running"] = false }));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => SystemCheckpoints.WaitSourceSettledAsync(peer.Client, TimeSpan.FromMilliseconds(200), CancellationToken.None));

        Assert.Equal("QEMU to leave the finish-migrate run state after the migration completed", e.Awaited);
        Assert.EndsWith("run state finish-migrate", e.Message, StringComparison.Ordinal);
    }
}
