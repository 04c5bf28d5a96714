using System.Text;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

/// <summary>
/// The guest agent's waits go through the one wait (<c>Poll</c>) on the client's clock, a fake one here: a limit passes
/// without real waiting and names what was awaited; an answer that comes in time ends the wait.
/// </summary>
public sealed class GuestAgentWaitTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    /// <summary>Reads the client's sync request (0xFF + guest-sync-delimited) and returns its id.</summary>
    private static async Task<long> ReadSyncAsync(FakePeer peer)
    {
        var first = new byte[1];
        Assert.Equal(1, await peer.Peer.ReadAsync(first));
        Assert.Equal(0xFF, first[0]);
        var sync = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("guest-sync-delimited", sync["execute"]!.GetValue<string>());
        return sync["arguments"]!["id"]!.GetValue<long>();
    }

    private static Task AnswerSyncAsync(FakePeer peer, long id) =>
        peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);

    [Fact]
    public async Task Given_an_agent_that_never_replies_to_a_command_When_its_limit_passes_on_the_clients_clock_Then_the_call_fails_naming_the_command_and_not_before()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);
        var ping = agent.ExecuteAsync("guest-ping", timeout: TimeSpan.FromSeconds(30));
        await AnswerSyncAsync(peer, await ReadSyncAsync(peer));
        Assert.Equal("guest-ping", JsonNode.Parse(await peer.ReadLineAsync())!["execute"]!.GetValue<string>());
        var asked = time.GetUtcNow();

        await time.AdvanceUntilDoneAsync(ping, TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => ping);
        Assert.Equal("timed out after 30 s waiting for the guest agent's reply to guest-ping", e.Message);
        Assert.True(time.GetUtcNow() - asked >= TimeSpan.FromSeconds(30), $"failed after {time.GetUtcNow() - asked}");
    }

    [Fact]
    public async Task Given_a_command_with_a_short_limit_that_must_resynchronize_first_When_the_agent_answers_nothing_Then_the_whole_command_ends_at_its_own_limit()
    {
        // A guest going down for a reboot: the lost boot_id read left the channel to resynchronize, and its close (5 s)
        // must not wait the agent's 30 s in that resynchronization (notebook 03's reboot took 262 s under load).
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);
        var start = time.GetUtcNow();

        var close = agent.ExecuteAsync("guest-file-close", timeout: TimeSpan.FromSeconds(5));
        await ReadSyncAsync(peer);
        await time.AdvanceUntilDoneAsync(close, TimeSpan.FromMilliseconds(100));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => close);
        Assert.Equal("timed out after 5 s waiting for the guest agent to answer guest-sync-delimited", e.Message);
        Assert.InRange(time.GetUtcNow() - start, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5.5));
    }

    [Fact]
    public async Task Given_an_agent_that_replies_in_time_When_a_command_runs_on_a_fake_clock_Then_the_reply_comes_back()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);
        var info = agent.ExecuteAsync("guest-info", timeout: TimeSpan.FromSeconds(30));
        await AnswerSyncAsync(peer, await ReadSyncAsync(peer));
        await peer.ReadLineAsync();
        time.Advance(TimeSpan.FromSeconds(29));

        await peer.SendAsync("{\"return\": {\"version\": \"9.2\"}}\n");

        Assert.Equal("9.2", (await info)!["version"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_a_guest_whose_agent_never_answers_When_waiting_until_ready_Then_it_retries_until_the_limit_and_names_the_handshake_and_the_attempts()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);
        var start = time.GetUtcNow();

        var ready = agent.WaitUntilReadyAsync(TimeSpan.FromSeconds(10));
        await time.AdvanceUntilDoneAsync(ready, TimeSpan.FromMilliseconds(50));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => ready);
        Assert.Equal("the guest agent to answer guest-sync-delimited", e.Awaited);
        Assert.Matches(@"^timed out after 10 s waiting for the guest agent to answer guest-sync-delimited: no answer to \d+ guest-sync attempts$", e.Message);
        var took = time.GetUtcNow() - start;
        // 250 ms, doubling to 2 s, the last one cut at the limit, then one short last look.
        Assert.InRange(took, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10.55));
    }

    [Fact]
    public async Task Given_a_guest_still_booting_When_its_agent_answers_the_second_attempt_Then_the_wait_returns_two_attempts()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);

        var ready = agent.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
        await ReadSyncAsync(peer); // the first attempt goes unanswered
        var second = ReadSyncAsync(peer);
        await time.AdvanceUntilDoneAsync(second, Step);
        await AnswerSyncAsync(peer, await second);

        Assert.Equal(2, await ready.WaitAsync(TimeSpan.FromSeconds(10), TimeProvider.System)); // real time: only so a broken test cannot hang
    }

    [Fact]
    public async Task Given_a_guest_that_stopped_When_waiting_until_ready_Then_the_wait_gives_up_at_once_with_the_reason()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, time);

        var e = await Assert.ThrowsAsync<GuestNotRunningException>(() => agent.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), () => "QEMU exited"));

        Assert.Equal("guest agent never answered: QEMU exited", e.Message);
    }
}
