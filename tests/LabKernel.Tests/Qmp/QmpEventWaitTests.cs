using System.Text.Json.Nodes;
using LabKernel.Qmp;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Qmp;

/// <summary>A listener's wait for an event, on the connection's clock (a fake one here: no test waits for real).</summary>
public sealed class QmpEventWaitTests
{
    private const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}""" + "\r\n";

    /// <summary>A QMP connection over <paramref name="peer"/> on <paramref name="time"/>'s clock, its greeting and capabilities exchanged.</summary>
    internal static async Task<QmpClient> ConnectAsync(FakePeer peer, TimeProvider time)
    {
        await peer.SendAsync(Greeting);
        var connecting = QmpClient.ConnectAsync(peer.Client, time);
        var caps = JsonNode.Parse(await peer.ReadLineAsync())!;
        await peer.SendAsync($$"""{"return": {}, "id": "{{caps["id"]}}"}""" + "\r\n");
        return await connecting;
    }

    private static string Event(string name, string device) =>
        new JsonObject
        {
            ["event"] = name,
            ["data"] = new JsonObject { ["device"] = device },
            ["timestamp"] = new JsonObject { ["seconds"] = 1, ["microseconds"] = 0 },
        }.ToJsonString() + "\r\n";

    [Fact]
    public async Task Given_no_such_event_When_the_limit_passes_on_the_connections_clock_Then_the_wait_fails_naming_the_event_and_not_before()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer, time);
        using var listener = qmp.Listen();

        var wait = listener.WaitAsync("BLOCK_JOB_READY", TimeSpan.FromMinutes(5));
        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Equal("QMP event BLOCK_JOB_READY", e.Awaited);
        Assert.Equal("timed out after 300 s waiting for QMP event BLOCK_JOB_READY", e.Message);
    }

    [Fact]
    public async Task Given_a_wait_that_timed_out_When_the_event_comes_later_Then_the_next_wait_still_gets_it()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer, time);
        using var listener = qmp.Listen();
        var first = listener.WaitAsync("SHUTDOWN", TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<LabTimeoutException>(() => first);

        await peer.SendAsync(Event("SHUTDOWN", "-"));
        var e = await listener.WaitAsync("SHUTDOWN", TimeSpan.FromSeconds(10));

        Assert.Equal("SHUTDOWN", e.Name);
    }

    [Fact]
    public async Task Given_other_events_first_When_the_awaited_one_arrives_before_the_limit_Then_it_comes_back()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer, time);
        using var listener = qmp.Listen();

        var wait = listener.WaitAsync(e => e.GetString("device") == "job0", TimeSpan.FromSeconds(30), "job0's READY");
        time.Advance(TimeSpan.FromSeconds(20));
        await peer.SendAsync(Event("BLOCK_JOB_READY", "other"));
        await peer.SendAsync(Event("BLOCK_JOB_READY", "job0"));

        Assert.Equal("job0", (await wait).GetString("device"));
    }
}
