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

    /// <summary>How the connection ends in the tests of what a failed call sees.</summary>
    public enum ConnectionEnd
    {
        Malformed,
        Lost,
        PeerClosed,
        Disposed,
    }

    /// <summary>
    /// A caller that catches the failure and asks <see cref="QmpClient.IsConnected"/> at once must hear false. Each
    /// call's failure is observed synchronously on the thread that fails it, and the reader fails the calls on a thread
    /// of the test's own while the pool runs the failed calls' continuations: with many calls waiting, the first ones
    /// end while the reader is still failing the rest, so a client that marks itself disconnected last is caught.
    /// </summary>
    [Theory]
    [InlineData(ConnectionEnd.Malformed)]
    [InlineData(ConnectionEnd.Lost)]
    [InlineData(ConnectionEnd.PeerClosed)]
    [InlineData(ConnectionEnd.Disposed)]
    public async Task Given_many_commands_waiting_When_the_connection_ends_Then_each_sees_the_client_disconnected_as_it_fails(ConnectionEnd end)
    {
        var transport = new HeldTransport();
        await using var qmp = await QmpClient.ConnectAsync(transport);
        var calls = Enumerable.Range(0, 4000).Select(_ => qmp.ExecuteAsync("query-status", timeout: TimeSpan.FromMinutes(5))).ToList();
        var seen = calls.Select(c => ConnectedWhenFailed(c, qmp)).ToList();
        var listener = qmp.Listen("SHUTDOWN");
        var listening = ConnectedWhenFailed(listener.WaitAsync("SHUTDOWN", TimeSpan.FromMinutes(5)), qmp);

        await OnOwnThreadAsync(end switch
        {
            ConnectionEnd.Malformed => () => transport.End(new QmpProtocolException("QMP sent invalid JSON")),
            ConnectionEnd.Lost => () => transport.End(new QmpDisconnectedException("QMP connection lost: Connection reset by peer")),
            ConnectionEnd.PeerClosed => () => transport.End(null),
            _ => () => qmp.DisposeAsync().AsTask().GetAwaiter().GetResult(),
        });

        var connected = await Task.WhenAll(seen).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, connected.Count(c => c));
        Assert.False(await listening.WaitAsync(TimeSpan.FromSeconds(10)), "the event wait failed while the client still said it was connected");
        Assert.All(calls, c => Assert.IsType<QmpDisconnectedException>(c.Exception?.InnerException));
    }

    [Fact]
    public async Task Given_a_transport_that_cannot_send_When_a_command_is_sent_Then_it_fails_with_the_client_already_disconnected()
    {
        var transport = new HeldTransport();
        await using var qmp = await QmpClient.ConnectAsync(transport);
        var waiting = qmp.ExecuteAsync("query-status", timeout: TimeSpan.FromMinutes(5));
        var waitingSaw = ConnectedWhenFailed(waiting, qmp);
        transport.SendFailure = new QmpDisconnectedException("QMP connection lost while sending: Broken pipe");

        var sending = qmp.ExecuteAsync("query-block");
        var sendingSaw = ConnectedWhenFailed(sending, qmp);

        await Assert.ThrowsAsync<QmpDisconnectedException>(() => sending);
        Assert.False(await sendingSaw);
        // A transport that failed to send may hold half a message: the calls waiting on it end too, with the cause.
        var e = await Assert.ThrowsAsync<QmpDisconnectedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("Broken pipe", e.Message, StringComparison.Ordinal);
        Assert.False(await waitingSaw);
        Assert.False(qmp.IsConnected);
    }

    /// <summary>Whether <paramref name="qmp"/> still said it was connected at the moment <paramref name="call"/> failed (read on the failing thread).</summary>
    private static Task<bool> ConnectedWhenFailed(Task call, QmpClient qmp) =>
        call.ContinueWith(t => !t.IsFaulted || qmp.IsConnected, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Runs <paramref name="action"/> on a new thread (not the pool's), so what it completes runs there while the pool is free.</summary>
    private static Task OnOwnThreadAsync(Action action)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                action();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        thread.Start();
        return done.Task;
    }

    /// <summary>
    /// A transport that greets, answers <c>qmp_capabilities</c>, then sends nothing until the test ends it. Its receive
    /// completes synchronously on whichever thread ends it, so the client's reader runs there.
    /// </summary>
    private sealed class HeldTransport : IQmpTransport
    {
        // No RunContinuationsAsynchronously, on purpose: the reader continues on the ending thread.
        private readonly TaskCompletionSource<JsonObject?> _capabilities = new();
        private readonly TaskCompletionSource<JsonObject?> _end = new();
        private int _receives;

        public Exception? SendFailure { get; set; }

        public ValueTask SendAsync(JsonObject message, CancellationToken cancellationToken = default)
        {
            if (SendFailure is { } failure)
            {
                return ValueTask.FromException(failure);
            }
            if (message["execute"]?.GetValue<string>() == "qmp_capabilities")
            {
                _capabilities.TrySetResult(new JsonObject { ["return"] = new JsonObject(), ["id"] = message["id"]!.DeepClone() });
            }
            return ValueTask.CompletedTask;
        }

        public ValueTask<JsonObject?> ReceiveAsync(CancellationToken cancellationToken = default) => Interlocked.Increment(ref _receives) switch
        {
            1 => new((JsonObject)JsonNode.Parse(Greeting)!),
            2 => new(_capabilities.Task),
            _ => new(_end.Task),
        };

        /// <summary>Ends the connection: with <paramref name="error"/> thrown from the pending receive, or cleanly (null).</summary>
        public void End(Exception? error)
        {
            if (error is null)
            {
                _end.TrySetResult(null);
            }
            else
            {
                _end.TrySetException(error);
            }
        }

        public ValueTask DisposeAsync()
        {
            End(null);
            return ValueTask.CompletedTask;
        }
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
