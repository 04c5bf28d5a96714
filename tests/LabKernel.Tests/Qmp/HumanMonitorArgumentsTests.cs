using System.Text.Json.Nodes;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Qmp;

/// <summary>
/// An HMP command goes through QMP's <c>human-monitor-command</c> with the command line as its only argument,
/// built from a typed record like every other command's arguments.
/// </summary>
public sealed class HumanMonitorArgumentsTests
{
    [Fact]
    public async Task Given_an_HMP_command_line_When_run_Then_human_monitor_command_carries_it_as_command_line_and_its_text_comes_back()
    {
        await using var peer = await ScriptedQmpPeer.StartAsync((_, cmd, _) =>
            Task.FromResult<JsonNode?>(cmd == "human-monitor-command" ? JsonValue.Create("disk0: /i/top.qcow2\r\n") : new JsonObject()));

        var output = await peer.Client.HumanMonitorCommandAsync("info block -v");

        Assert.Equal("disk0: /i/top.qcow2\r\n", output);
        Assert.Equal(JsonNode.Parse("""{"command-line":"info block -v"}"""),
            peer.Received.Single(r => r.Command == "human-monitor-command").Arguments, JsonNode.DeepEquals);
    }
}
