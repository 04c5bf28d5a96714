using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Tests.Qmp;

public sealed class QmpClientTests
{
    private const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}""" + "\r\n";

    /// <summary>Plays QEMU's side of the handshake and returns the connected client.</summary>
    private static async Task<QmpClient> ConnectAsync(FakePeer peer)
    {
        await peer.SendAsync(Greeting);
        var connecting = QmpClient.ConnectAsync(peer.Client);
        var caps = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("qmp_capabilities", caps["execute"]!.GetValue<string>());
        await peer.SendAsync($$"""{"return": {}, "id": "{{caps["id"]}}"}""" + "\r\n");
        return await connecting;
    }

    [Fact]
    public async Task Given_a_greeting_When_connecting_Then_the_version_and_capabilities_are_read()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        Assert.Equal(new Version(7, 2, 0), qmp.QemuVersion);
        Assert.Equal(["oob"], qmp.Capabilities);
    }

    [Fact]
    public async Task Given_two_commands_in_flight_When_replies_arrive_in_reverse_order_Then_each_gets_its_own()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        var first = qmp.ExecuteAsync("query-status");
        var second = qmp.ExecuteAsync("query-name");
        var c1 = JsonNode.Parse(await peer.ReadLineAsync())!;
        var c2 = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.NotEqual(c1["id"]!.GetValue<string>(), c2["id"]!.GetValue<string>());
        await peer.SendAsync($$"""{"return": {"name": "vm"}, "id": "{{c2["id"]}}"}""" + "\r\n");
        await peer.SendAsync($$"""{"return": {"status": "running"}, "id": "{{c1["id"]}}"}""" + "\r\n");
        Assert.Equal("running", (await first)!["status"]!.GetValue<string>());
        Assert.Equal("vm", (await second)!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_a_listener_registered_before_a_command_When_the_event_precedes_the_reply_Then_it_is_delivered()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        using var listener = qmp.Listen(e => e.Name == "BLOCK_JOB_READY" && e.GetString("device") == "job0");
        var commit = qmp.ExecuteAsync("block-commit", new JsonObject { ["device"] = "disk0", ["job-id"] = "job0" });
        var cmd = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("disk0", cmd["arguments"]!["device"]!.GetValue<string>());
        await peer.SendAsync("""{"event": "BLOCK_JOB_READY", "data": {"device": "other"}, "timestamp": {"seconds": 1, "microseconds": 0}}""" + "\r\n");
        await peer.SendAsync("""{"event": "BLOCK_JOB_READY", "data": {"device": "job0", "len": 10, "offset": 10}, "timestamp": {"seconds": 1700000000, "microseconds": 5}}""" + "\r\n");
        await peer.SendAsync($$"""{"return": {}, "id": "{{cmd["id"]}}"}""" + "\r\n");
        await commit;
        var e = await listener.WaitAsync("BLOCK_JOB_READY", TimeSpan.FromSeconds(5));
        Assert.Equal("job0", e.GetString("device"));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddTicks(50), e.Timestamp);
    }

    [Fact]
    public async Task Given_a_QMP_error_When_executing_Then_a_typed_exception_carries_class_description_and_command()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        var task = qmp.ExecuteAsync("block-commit", new JsonObject { ["device"] = "nope" });
        var cmd = JsonNode.Parse(await peer.ReadLineAsync())!;
        await peer.SendAsync($$"""{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}, "id": "{{cmd["id"]}}"}""" + "\r\n");
        var ex = await Assert.ThrowsAsync<QmpErrorException>(() => task);
        Assert.Equal("DeviceNotFound", ex.ErrorClass);
        Assert.Equal("Device 'nope' not found", ex.Description);
        Assert.Equal("block-commit", ex.CommandName);
        Assert.Contains("\"block-commit\"", ex.Command);
        Assert.Contains("block-commit failed", ex.Message);
    }

    [Fact]
    public async Task Given_pending_commands_and_a_listener_When_QEMU_disconnects_Then_all_fail_at_once()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        using var listener = qmp.Listen("SHUTDOWN");
        var a = qmp.ExecuteAsync("query-status");
        var b = qmp.ExecuteAsync("query-block");
        await peer.ReadLineAsync();
        await peer.ReadLineAsync();
        peer.ClosePeer();
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => a);
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => b);
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => listener.WaitAsync("SHUTDOWN", TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => qmp.ExecuteAsync("query-status"));
        Assert.False(qmp.IsConnected);
    }

    [Fact]
    public async Task Given_no_reply_When_the_time_limit_passes_Then_the_error_names_the_command()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        var ex = await Assert.ThrowsAsync<LabTimeoutException>(() => qmp.ExecuteAsync("query-jobs", timeout: TimeSpan.FromMilliseconds(100)));
        Assert.Contains("query-jobs", ex.Message);
    }

    [Fact]
    public async Task Given_an_HMP_command_When_run_Then_it_goes_through_human_monitor_command()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        var task = qmp.HumanMonitorCommandAsync("info block");
        var cmd = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("human-monitor-command", cmd["execute"]!.GetValue<string>());
        Assert.Equal("info block", cmd["arguments"]!["command-line"]!.GetValue<string>());
        await peer.SendAsync($$"""{"return": "disk0: x.qcow2\r\n", "id": "{{cmd["id"]}}"}""" + "\r\n");
        Assert.Equal("disk0: x.qcow2\r\n", await task);
    }

    [Fact]
    public async Task Given_something_that_is_not_QMP_When_connecting_Then_a_protocol_error_says_so()
    {
        await using var peer = await FakePeer.CreateAsync();
        await peer.SendAsync("SSH-2.0-OpenSSH_9.2\r\n");
        var ex = await Assert.ThrowsAsync<QmpProtocolException>(() => QmpClient.ConnectAsync(peer.Client));
        Assert.Contains("SSH-2.0", ex.Message);
    }
}
