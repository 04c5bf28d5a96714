using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Tests.Qmp;

/// <summary>
/// What a peer that is not well-behaved QEMU does to a connection: a malformed or oversized message mid-stream
/// fails every pending call at once with the cause; random and truncated input ends in typed errors, never a hang.
/// </summary>
public sealed class QmpTransportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}""" + "\n";

    private static async Task<QmpClient> ConnectAsync(FakePeer peer, int maxMessageBytes = StreamQmpTransport.DefaultMaxMessageBytes)
    {
        await peer.SendAsync(Greeting);
        var connecting = QmpClient.ConnectAsync(new StreamQmpTransport(peer.Client, maxMessageBytes));
        var caps = JsonNode.Parse(await peer.ReadLineAsync())!;
        await peer.SendAsync($$"""{"return": {}, "id": "{{caps["id"]}}"}""" + "\n");
        return await connecting;
    }

    [Theory]
    [InlineData("{\"return\": {}, \"id\": \n")]
    [InlineData("[1, 2, 3]\n")]
    [InlineData("not json at all\n")]
    public async Task Given_a_command_waiting_When_the_peer_sends_a_malformed_message_Then_it_fails_at_once_with_the_cause(string garbage)
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer);
        var pending = qmp.ExecuteAsync("query-status", timeout: TimeSpan.FromMinutes(5));
        await peer.ReadLineAsync();

        await peer.SendAsync(garbage);

        var e = await Assert.ThrowsAsync<QmpDisconnectedException>(() => pending.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.IsType<QmpProtocolException>(e.InnerException);
        Assert.False(qmp.IsConnected);
    }

    [Fact]
    public async Task Given_a_message_longer_than_the_limit_When_it_arrives_Then_the_pending_call_fails_naming_the_limit()
    {
        await using var peer = await FakePeer.CreateAsync();
        await using var qmp = await ConnectAsync(peer, maxMessageBytes: 4096);
        var pending = qmp.ExecuteAsync("query-named-block-nodes", timeout: TimeSpan.FromMinutes(5));
        await peer.ReadLineAsync();

        // No newline ever: without a limit the reader would buffer forever.
        await peer.SendAsync("{\"return\": \"" + new string('x', 10_000));

        var e = await Assert.ThrowsAsync<QmpDisconnectedException>(() => pending.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("4096", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_random_and_truncated_input_When_read_as_QMP_Then_every_case_ends_in_a_message_or_a_typed_error_within_its_limit()
    {
        var rng = new Random(20261201);
        var samples = new List<byte[]>
        {
            Encoding.UTF8.GetBytes(Greeting),
            Encoding.UTF8.GetBytes("""{"event": "JOB_STATUS_CHANGE", "data": {"id": "j", "status": "ready"}, "timestamp": {"seconds": 1, "microseconds": 2}}""" + "\n"),
            Encoding.UTF8.GetBytes("""{"return": [{"node-name": "a", "file": "/x"}], "id": "lab-1"}""" + "\n"),
        };
        var iterations = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            var source = samples[rng.Next(samples.Count)];
            var input = (rng.Next(3)) switch
            {
                0 => source[..rng.Next(source.Length)],                           // truncated
                1 => Mutate(source, rng),                                       // bytes flipped
                _ => Enumerable.Range(0, rng.Next(1, 300)).Select(_ => (byte)rng.Next(256)).ToArray(), // noise
            };
            await using var transport = new StreamQmpTransport(new MemoryStream(input), maxMessageBytes: 1024);
            var read = Task.Run(async () =>
            {
                try
                {
                    while (await transport.ReceiveAsync() is not null)
                    {
                    }
                }
                catch (QmpProtocolException)
                {
                }
            });
            var finished = await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(5)));
            Assert.True(finished == read, $"hang on input {Convert.ToHexString(input)}");
            await read; // any exception other than the typed one fails the test here
            iterations++;
        }
        output.WriteLine($"{iterations} inputs in 5 s");
        Assert.True(iterations > 100, $"only {iterations} iterations");
    }

    private static byte[] Mutate(byte[] source, Random rng)
    {
        var copy = (byte[])source.Clone();
        for (var i = 0; i < 1 + rng.Next(4); i++)
        {
            copy[rng.Next(copy.Length)] = (byte)rng.Next(256);
        }
        return copy;
    }
}
