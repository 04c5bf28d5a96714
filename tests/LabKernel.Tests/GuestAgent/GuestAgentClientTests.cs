using System.Text;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;

namespace LabKernel.Tests.GuestAgent;

public sealed class GuestAgentClientTests
{
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

    [Fact]
    public async Task Given_stale_bytes_before_the_delimiter_When_syncing_Then_they_are_skipped_and_the_command_gets_its_reply()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var ping = agent.PingAsync();
        var id = await ReadSyncAsync(peer);
        // A late reply to an abandoned command, a torn line, then the delimiter and a reply with a wrong id, then ours.
        var garbage = Encoding.UTF8.GetBytes("{\"return\": {\"pid\": 5}}\n{\"retu");
        await peer.SendAsync([.. garbage, 0xFF, .. Encoding.UTF8.GetBytes("{\"return\": 1}\n"), 0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        var cmd = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("guest-ping", cmd["execute"]!.GetValue<string>());
        await peer.SendAsync("{\"return\": {}}\n");
        await ping;
    }

    [Fact]
    public async Task Given_a_guest_rewound_to_a_snapshot_When_the_next_command_runs_Then_the_stale_reply_it_sends_is_skipped()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var first = agent.PingAsync();
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        await peer.ReadLineAsync();
        await peer.SendAsync("{\"return\": {}}\n");
        await first;

        // The guest's memory goes back to an instant when it was answering a ping: it sends that answer again.
        agent.GuestRewound();
        var exec = agent.ExecAsync(["true"]);
        var id2 = await ReadSyncAsync(peer);
        await peer.SendAsync([.. Encoding.UTF8.GetBytes("{\"return\": {}}\n"), 0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id2}}}\n")]);
        Assert.Equal("guest-exec", JsonNode.Parse(await peer.ReadLineAsync())!["execute"]!.GetValue<string>());
        await peer.SendAsync("{\"return\": {\"pid\": 7}}\n");
        await peer.ReadLineAsync();
        await peer.SendAsync("{\"return\": {\"exited\": true, \"exitcode\": 0}}\n");
        Assert.Equal(0, (await exec).ExitCode);
    }

    [Fact]
    public async Task Given_a_guest_exec_reply_without_a_pid_When_starting_Then_a_one_line_error_says_the_reply_was_out_of_step()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var exec = agent.ExecAsync(["true"]);
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        await peer.ReadLineAsync();
        await peer.SendAsync("{\"return\": {}}\n");
        var e = await Assert.ThrowsAsync<LabException>(() => exec);
        Assert.Contains("without a pid", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Given_guest_exec_When_the_process_exits_Then_exit_code_and_decoded_output_come_back()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var run = agent.ExecAsync(["/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"]);
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        var exec = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("guest-exec", exec["execute"]!.GetValue<string>());
        Assert.Equal("/bin/sh", exec["arguments"]!["path"]!.GetValue<string>());
        Assert.Equal(["-c", "echo hi; echo oops >&2; exit 3"], exec["arguments"]!["arg"]!.AsArray().Select(a => a!.GetValue<string>()));
        await peer.SendAsync("{\"return\": {\"pid\": 42}}\n");
        var status = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal(42, status["arguments"]!["pid"]!.GetValue<int>());
        await peer.SendAsync("{\"return\": {\"exited\": false}}\n");
        await peer.ReadLineAsync();
        var outB64 = Convert.ToBase64String(Encoding.UTF8.GetBytes("hi\n"));
        var errB64 = Convert.ToBase64String(Encoding.UTF8.GetBytes("oops\n"));
        await peer.SendAsync($"{{\"return\": {{\"exited\": true, \"exitcode\": 3, \"out-data\": \"{outB64}\", \"err-data\": \"{errB64}\"}}}}\n");
        var r = await run;
        Assert.Equal(3, r.ExitCode);
        Assert.Equal("hi\n", r.StandardOutput);
        Assert.Equal("oops\n", r.StandardError);
        Assert.False(r.Succeeded);
        Assert.Contains("exited with 3: oops", Assert.Throws<GuestCommandFailedException>(() => r.EnsureSuccess()).Message);
    }

    [Fact]
    public async Task Given_an_agent_error_When_executing_Then_a_typed_exception_names_the_command()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var open = agent.ReadFileAsync("/nonexistent");
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        await peer.ReadLineAsync();
        await peer.SendAsync("{\"error\": {\"class\": \"GenericError\", \"desc\": \"failed to open file '/nonexistent' (mode: 'r')\"}}\n");
        var ex = await Assert.ThrowsAsync<GuestAgentErrorException>(() => open);
        Assert.Equal("guest-file-open", ex.Command);
        Assert.Contains("/nonexistent", ex.Message);
    }

    [Fact]
    public async Task Given_a_silent_agent_When_waiting_for_it_Then_the_timeout_names_the_handshake()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var ex = await Assert.ThrowsAsync<LabTimeoutException>(() => agent.WaitUntilReadyAsync(TimeSpan.FromMilliseconds(600)));
        Assert.Contains("guest-sync-delimited", ex.Message);
    }

    [Fact]
    public async Task Given_a_guest_that_trickles_its_reply_a_byte_at_a_time_When_a_command_waits_Then_it_ends_at_its_limit_naming_the_command()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var ping = agent.ExecuteAsync("guest-info", timeout: TimeSpan.FromSeconds(1));
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        await peer.ReadLineAsync();
        using var stop = new CancellationTokenSource();
        var trickle = Task.Run(async () =>
        {
            // Each byte comes well within the limit; the whole reply never does.
            foreach (var b in Encoding.UTF8.GetBytes("{\"return\": {\"version\": \"" + new string('9', 200)))
            {
                await peer.SendAsync([b]);
                await Task.Delay(100, stop.Token);
            }
        });

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => ping.WaitAsync(TimeSpan.FromSeconds(10)));
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => trickle);
        Assert.Contains("guest-info", e.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(1), e.Limit);
    }

    [Fact]
    public async Task Given_a_reply_longer_than_the_limit_When_it_arrives_Then_the_call_fails_with_a_one_line_error()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client, maxMessageBytes: 4096);
        var call = agent.ExecuteAsync("guest-info", timeout: TimeSpan.FromSeconds(30));
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        await peer.ReadLineAsync();
        await peer.SendAsync("{\"return\": \"" + new string('x', 70_000));

        var e = await Assert.ThrowsAsync<LabException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("longer than 4096 bytes", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Given_a_guest_file_read_reply_that_is_not_base64_When_a_file_is_read_Then_a_one_line_error_names_the_file_and_the_handle_is_closed()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var agent = GuestAgentClient.FromStream(peer.Client);
        var read = agent.ReadFileAsync("/root/num.txt.progress");
        var id = await ReadSyncAsync(peer);
        await peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n")]);
        Assert.Equal("guest-file-open", JsonNode.Parse(await peer.ReadLineAsync())!["execute"]!.GetValue<string>());
        await peer.SendAsync("{\"return\": 1000}\n");
        Assert.Equal("guest-file-read", JsonNode.Parse(await peer.ReadLineAsync())!["execute"]!.GetValue<string>());
        await peer.SendAsync("{\"return\": {\"count\": 4, \"buf-b64\": \"not base64!!\", \"eof\": true}}\n");
        var close = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal(("guest-file-close", 1000), (close["execute"]!.GetValue<string>(), close["arguments"]!["handle"]!.GetValue<int>()));
        await peer.SendAsync("{\"return\": {}}\n");

        var e = await Assert.ThrowsAsync<LabException>(() => read.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("guest-file-read data of /root/num.txt.progress that is not base64", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("not base64!!")]
    [InlineData("aGk")]
    public void Given_agent_data_that_is_not_base64_When_decoded_Then_a_one_line_error_names_what_it_was(string data)
    {
        var e = Assert.Throws<LabException>(() => GuestExec.Decode(System.Text.Json.Nodes.JsonValue.Create(data), "guest-exec-status out-data"));
        Assert.Contains("guest-exec-status out-data", e.Message, StringComparison.Ordinal);
        Assert.Contains("not base64", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
