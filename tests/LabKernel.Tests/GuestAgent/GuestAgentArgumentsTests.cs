using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;

namespace LabKernel.Tests.GuestAgent;

/// <summary>
/// The arguments of the agent commands, built from typed records, as they reach the agent's socket: the same
/// members the hand-written objects had (QAPI's names, <c>buf-b64</c> included), options left out when not set,
/// and no <c>arguments</c> at all for the commands that take none.
/// </summary>
public sealed class GuestAgentArgumentsTests
{
    /// <summary>
    /// The agent's side of the socket: answers the sync handshake, records every command with its arguments (null
    /// when the message has none), and replies with what the test's answer returns. A shutdown gets no reply, as
    /// from the real agent.
    /// </summary>
    private sealed class AgentPeer : IAsyncDisposable
    {
        private readonly FakePeer _peer;
        private readonly Func<string, JsonObject?, JsonNode?> _answer;
        private readonly Task _loop;

        private AgentPeer(FakePeer peer, Func<string, JsonObject?, JsonNode?> answer)
        {
            _peer = peer;
            _answer = answer;
            Agent = GuestAgentClient.FromStream(peer.Client);
            _loop = Task.Run(LoopAsync);
        }

        public GuestAgentClient Agent { get; }

        public ConcurrentQueue<(string Command, JsonObject? Arguments)> Received { get; } = new();

        public static async Task<AgentPeer> StartAsync(Func<string, JsonObject?, JsonNode?> answer) => new(await FakePeer.CreateAsync(), answer);

        public JsonObject? Sent(string command) => Received.Single(r => r.Command == command).Arguments;

        private async Task LoopAsync()
        {
            try
            {
                while (true)
                {
                    // The handshake's 0xFF arrives before its JSON on the same line; it decodes as U+FFFD.
                    var message = JsonNode.Parse((await _peer.ReadLineAsync()).TrimStart('\uFFFD'))!.AsObject();
                    var command = message["execute"]!.GetValue<string>();
                    var arguments = (JsonObject?)message["arguments"]?.DeepClone();
                    Received.Enqueue((command, arguments));
                    if (command == "guest-sync-delimited")
                    {
                        await _peer.SendAsync([0xFF, .. Encoding.UTF8.GetBytes($$"""{"return": {{arguments!["id"]!.ToJsonString()}}}""" + "\n")]);
                    }
                    else if (command != "guest-shutdown")
                    {
                        var reply = new JsonObject { ["return"] = _answer(command, arguments)?.DeepClone() ?? new JsonObject() };
                        await _peer.SendAsync(reply.ToJsonString() + "\n");
                    }
                }
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Agent.DisposeAsync();
            await _peer.DisposeAsync();
            await _loop;
        }
    }

    private static JsonNode? Exits(string command, string output) => command switch
    {
        "guest-exec" => JsonNode.Parse("""{"pid": 42}"""),
        "guest-exec-status" => new JsonObject { ["exited"] = true, ["exitcode"] = 0, ["out-data"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(output)) },
        _ => null,
    };

    [Fact]
    public async Task Given_a_program_with_input_and_environment_When_run_Then_guest_exec_carries_them_and_guest_exec_status_names_the_pid()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, _) => Exits(cmd, "hi\n"));

        var result = await peer.Agent.ExecAsync(["/bin/cat", "-", "two words"], new GuestExecOptions { Input = "hi\n"u8.ToArray(), Environment = ["LANG=C", "X=1"] });

        Assert.Equal("hi\n", result.StandardOutput);
        Assert.Equal(
            JsonNode.Parse("""{"path":"/bin/cat","arg":["-","two words"],"capture-output":true,"input-data":"aGkK","env":["LANG=C","X=1"]}"""),
            peer.Sent("guest-exec"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"pid":42}"""), peer.Sent("guest-exec-status"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_program_without_input_or_environment_When_run_Then_guest_exec_leaves_both_out()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, _) => Exits(cmd, ""));

        await peer.Agent.ExecAsync(["true"]);

        Assert.Equal(JsonNode.Parse("""{"path":"true","arg":[],"capture-output":true}"""), peer.Sent("guest-exec"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_guest_process_to_kill_When_killed_Then_guest_exec_runs_kill_without_capturing_output()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, _) => Exits(cmd, ""));

        await GuestExec.TryKillAsync(peer.Agent, 4321, CancellationToken.None);

        Assert.Equal(JsonNode.Parse("""{"path":"/bin/kill","arg":["-KILL","4321"]}"""), peer.Sent("guest-exec"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_file_written_into_the_guest_When_sent_Then_open_write_flush_and_close_carry_the_path_mode_handle_and_base64_chunk()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, args) => cmd switch
        {
            "guest-file-open" => JsonValue.Create(1000),
            "guest-file-write" => new JsonObject { ["count"] = Convert.FromBase64String(args!["buf-b64"]!.GetValue<string>()).Length, ["eof"] = false },
            _ => null,
        });

        await peer.Agent.WriteFileAsync("/root/a file", "hello"u8.ToArray());

        Assert.Equal(["guest-sync-delimited", "guest-file-open", "guest-file-write", "guest-file-flush", "guest-file-close"], peer.Received.Select(r => r.Command));
        Assert.Equal(JsonNode.Parse("""{"path":"/root/a file","mode":"w"}"""), peer.Sent("guest-file-open"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"handle":1000,"buf-b64":"aGVsbG8="}"""), peer.Sent("guest-file-write"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"handle":1000}"""), peer.Sent("guest-file-flush"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"handle":1000}"""), peer.Sent("guest-file-close"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_file_read_from_the_guest_When_sent_Then_read_asks_for_one_chunk_by_handle_and_count()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, _) => cmd switch
        {
            "guest-file-open" => JsonValue.Create(7),
            "guest-file-read" => new JsonObject { ["count"] = 5, ["buf-b64"] = "aGVsbG8=", ["eof"] = true },
            _ => null,
        });

        var content = await peer.Agent.ReadFileAsync("/etc/hostname");

        Assert.Equal("hello"u8.ToArray(), content);
        Assert.Equal(JsonNode.Parse("""{"path":"/etc/hostname","mode":"r"}"""), peer.Sent("guest-file-open"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"handle":7,"count":1048576}"""), peer.Sent("guest-file-read"), JsonNode.DeepEquals);
        Assert.Equal(JsonNode.Parse("""{"handle":7}"""), peer.Sent("guest-file-close"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_the_filesystems_frozen_and_thawed_When_sent_Then_the_fsfreeze_commands_carry_no_arguments()
    {
        await using var peer = await AgentPeer.StartAsync((cmd, _) => cmd switch
        {
            "guest-fsfreeze-status" => JsonValue.Create("thawed"),
            "guest-fsfreeze-freeze" or "guest-fsfreeze-thaw" => JsonValue.Create(2),
            _ => null,
        });

        var frozen = await peer.Agent.WhileFrozenAsync(() => Task.FromResult(true));
        var status = await peer.Agent.FreezeStatusAsync();

        Assert.True(frozen);
        Assert.Equal(FsFreezeStatus.Thawed, status);
        Assert.Null(peer.Sent("guest-fsfreeze-freeze"));
        Assert.Null(peer.Sent("guest-fsfreeze-thaw"));
        Assert.Null(peer.Sent("guest-fsfreeze-status"));
    }

    [Fact]
    public async Task Given_a_reboot_When_sent_Then_the_handshake_carries_its_id_alone_and_guest_shutdown_carries_the_mode()
    {
        await using var peer = await AgentPeer.StartAsync((_, _) => null);

        await peer.Agent.ShutdownAsync("reboot");
        await Poll(() => peer.Received.Any(r => r.Command == "guest-shutdown"));

        var sync = peer.Sent("guest-sync-delimited")!;
        Assert.Equal(["id"], sync.Select(kv => kv.Key));
        Assert.True(sync["id"]!.GetValue<long>() > 0);
        Assert.Equal(JsonNode.Parse("""{"mode":"reboot"}"""), peer.Sent("guest-shutdown"), JsonNode.DeepEquals);
    }

    /// <summary>Waits for the peer to have read what the client already wrote (a shutdown is sent, not answered).</summary>
    private static async Task Poll(Func<bool> done)
    {
        for (var i = 0; i < 500 && !done(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(done());
    }
}
