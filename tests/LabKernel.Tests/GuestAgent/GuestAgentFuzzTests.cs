using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;

namespace LabKernel.Tests.GuestAgent;

/// <summary>
/// A guest agent that is not well-behaved: after the handshake (or instead of it) it sends random bytes, truncated,
/// byte-flipped or retyped agent replies, then hangs up or goes silent. Every call ends in a result or a
/// <see cref="LabException"/> within its limit: no hang, no other exception type.
/// </summary>
public sealed class GuestAgentFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>What the lab asks; each reads the replies its commands get, in order.</summary>
    /// <summary>What the lab asks, each with the replies a real agent sends to it (one line per command, as qemu-ga writes them).</summary>
    private static readonly (Func<GuestAgentClient, Task> Call, string Replies)[] Exchanges =
    [
        (a => a.PingAsync(), """{"return": {}}"""),
        (a => a.ExecuteAsync("guest-info"), """{"return": {"version": "7.2.0"}}"""),
        (a => a.InfoAsync(), """{"return": {"version": "7.2.0", "supported_commands": [{"enabled": true, "name": "guest-ping", "success-response": true}, {"enabled": false, "name": "guest-exec", "success-response": true}]}}"""),
        (a => a.ExecAsync(["true"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(1) }),
            """{"return": {"pid": 42}}""" + "\n" + """{"return": {"exited": false}}""" + "\n" + """{"return": {"exited": true, "exitcode": 0, "out-data": "aGkK", "err-data": "", "out-truncated": false}}"""),
        (a => a.ExecAsync(["sleep", "9"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(1), Check = false }),
            """{"return": {"pid": 43}}""" + "\n" + """{"return": {"exited": true, "signal": 9}}"""),
        (a => a.ReadFileAsync("/root/progress"),
            """{"return": 1000}""" + "\n" + """{"return": {"count": 2, "buf-b64": "aGk=", "eof": true}}""" + "\n" + """{"return": {}}"""),
        (a => a.WriteFileAsync("/root/x", new byte[] { 1, 2 }),
            """{"return": 1001}""" + "\n" + """{"return": {"count": 2, "eof": false}}""" + "\n" + """{"return": {}}""" + "\n" + """{"return": {}}"""),
        (a => a.FreezeAsync(), """{"return": 2}"""),
        (a => a.FreezeStatusAsync(), """{"return": "frozen"}"""),
        (a => a.Sha256Async("/root/x"),
            """{"return": {"pid": 44}}""" + "\n" + """{"return": {"exited": true, "exitcode": 0, "out-data": "YWJjICAveAo="}}"""),
        (a => a.ReadFileAsync("/x"), """{"error": {"class": "GenericError", "desc": "failed to open file '/x' (mode: 'r')"}}"""),
    ];

    [Fact]
    public async Task Given_random_truncated_and_mutated_agent_replies_When_the_lab_calls_the_agent_Then_every_call_ends_in_a_result_or_a_LabException_within_its_limit()
    {
        // LAB_FUZZ_SEED picks another sequence (the run prints the seed it used).
        var seed = int.TryParse(Environment.GetEnvironmentVariable("LAB_FUZZ_SEED"), out var given) ? given : 20261202;
        var rng = new Random(seed);
        var iterations = 0;
        var silent = 0;
        var outcomes = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            // Mostly the replies of the call made; sometimes another call's (a reply out of step).
            var call = Exchanges[rng.Next(Exchanges.Length)].Call;
            var reply = Encoding.UTF8.GetBytes(Exchanges[rng.Next(Exchanges.Length)].Replies + "\n");
            if (rng.Next(3) > 0)
            {
                var e = Exchanges[rng.Next(Exchanges.Length)];
                (call, reply) = (e.Call, Encoding.UTF8.GetBytes(e.Replies + "\n"));
            }
            var input = Mutate(reply, rng);
            var fuzzTheHandshake = rng.Next(4) == 0;
            var staySilent = rng.Next(25) == 0; // no hang-up: the call must end at its own limit
            silent += staySilent ? 1 : 0;

            await using var peer = await FakePeer.CreateAsync();
            await using var agent = GuestAgentClient.FromStream(peer.Client, maxMessageBytes: 1024);
            agent.CommandTimeout = TimeSpan.FromMilliseconds(200);
            var running = Task.Run(() => call(agent));
            var id = await ReadSyncIdAsync(peer);
            var sync = Encoding.UTF8.GetBytes($"{{\"return\": {id}}}\n");
            byte[] stream = fuzzTheHandshake ? [0xFF, .. Mutate(sync, rng), .. input] : [0xFF, .. sync, .. input];
            await peer.SendAsync(stream);
            if (!staySilent)
            {
                // Hang up after the input (the lab's own commands can still be written, as to an agent that quit).
                peer.Peer.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            }

            var finished = await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(finished == running, $"hang on input {Encoding.UTF8.GetString(stream)}");
            var outcome = "result";
            try
            {
                await running;
            }
            catch (LabException e)
            {
                outcome = e.GetType().Name;
                Assert.DoesNotContain('\n', e.Message);
                if (e is LabTimeoutException timeout)
                {
                    // A silent agent: the call ends within the agent's 200 ms limit for a command (the handshake waits
                    // for what is left of it), not at the test's 10 s.
                    Assert.True(timeout.Limit > TimeSpan.Zero && timeout.Limit <= agent.CommandTimeout, $"ended at a {timeout.Limit} limit: {e.Message}");
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name} ({e.Message}) on input {Encoding.UTF8.GetString(stream)}\n{e}");
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            iterations++;
        }
        output.WriteLine($"seed {seed}: {iterations} inputs in {clock.Elapsed.TotalSeconds:0.0} s ({silent} with a silent agent): "
            + string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key} {o.Value}")));
        Assert.True(iterations > 50, $"only {iterations} iterations");
        Assert.True(outcomes.GetValueOrDefault("result") > 0, "no input got through: the fuzz only tests the error path");
    }

    private static async Task<long> ReadSyncIdAsync(FakePeer peer)
    {
        var first = new byte[1];
        Assert.Equal(1, await peer.Peer.ReadAsync(first));
        Assert.Equal(0xFF, first[0]);
        return JsonNode.Parse(await peer.ReadLineAsync())!["arguments"]!["id"]!.GetValue<long>();
    }

    /// <summary>Unchanged (a quarter of the time), truncated, bytes flipped, random noise, or a JSON value of another type.</summary>
    internal static byte[] Mutate(byte[] source, Random rng)
    {
        switch (rng.Next(5))
        {
            case 0:
                return source;
            case 1:
                return source[..rng.Next(source.Length)];
            case 2:
                var copy = (byte[])source.Clone();
                for (var i = 0; i < 1 + rng.Next(4); i++)
                {
                    copy[rng.Next(copy.Length)] = (byte)rng.Next(256);
                }
                return copy;
            case 3:
                return [.. Enumerable.Range(0, rng.Next(1, 300)).Select(_ => (byte)rng.Next(256))];
            default:
                return Encoding.UTF8.GetBytes(string.Join("\n", Encoding.UTF8.GetString(source).Split('\n').Select(l => Retype(l, rng))));
        }
    }

    /// <summary>Replaces one value in a JSON line with a value of another type (null, a string, a number, ...).</summary>
    internal static string Retype(string line, Random rng)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(line);
        }
        catch (System.Text.Json.JsonException)
        {
            return line;
        }
        if (root is null || rng.Next(2) == 0)
        {
            return line;
        }
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n)
        {
            if (n is null)
            {
                return;
            }
            nodes.Add(n);
            if (n is JsonObject o)
            {
                foreach (var kv in o.ToList())
                {
                    Walk(kv.Value);
                }
            }
            else if (n is JsonArray a)
            {
                foreach (var x in a.ToList())
                {
                    Walk(x);
                }
            }
        }
        Walk(root);
        JsonNode? Other() => rng.Next(8) switch
        {
            0 => null,
            1 => JsonValue.Create("x"),
            2 => JsonValue.Create(-1),
            3 => JsonValue.Create(1e300),
            4 => JsonValue.Create(true),
            5 => new JsonArray(1, "a"),
            6 => new JsonObject { ["k"] = 1 },
            _ => JsonValue.Create(long.MaxValue),
        };
        var target = nodes[rng.Next(nodes.Count)];
        switch (target.Parent)
        {
            case JsonObject parent:
                parent[target.GetPropertyName()] = Other();
                break;
            case JsonArray array:
                array[target.GetElementIndex()] = Other();
                break;
            default:
                return Other()?.ToJsonString() ?? "null";
        }
        return root.ToJsonString();
    }
}
