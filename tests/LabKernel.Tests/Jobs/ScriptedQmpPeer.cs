using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Tests.Jobs;

/// <summary>
/// A QMP server over a connected unix socket pair: sends the greeting, answers each command with what the
/// handler returns (a <c>return</c> value, or an error), and lets the handler emit events before or after the
/// reply, as QEMU does. Every command received is recorded in order.
/// </summary>
internal sealed class ScriptedQmpPeer : IAsyncDisposable
{
    private readonly Socket _server;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly Task _loop;

    private ScriptedQmpPeer(Socket server, Func<ScriptedQmpPeer, string, JsonObject, Task<JsonNode?>> handler)
    {
        _server = server;
        _stream = new NetworkStream(server, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
        Handler = handler;
        Client = null!;
        _loop = Task.Run(LoopAsync);
    }

    public QmpClient Client { get; private set; }

    public Func<ScriptedQmpPeer, string, JsonObject, Task<JsonNode?>> Handler { get; set; }

    /// <summary>Commands received, in order, with their arguments.</summary>
    public ConcurrentQueue<(string Command, JsonObject Arguments)> Received { get; } = new();

    public IEnumerable<string> Commands => Received.Select(r => r.Command);

    /// <summary>A handler result that makes the peer answer with a QMP error.</summary>
    public static JsonObject Error(string cls, string desc) => new() { ["__error"] = new JsonObject { ["class"] = cls, ["desc"] = desc } };

    public static async Task<ScriptedQmpPeer> StartAsync(Func<ScriptedQmpPeer, string, JsonObject, Task<JsonNode?>> handler)
    {
        var (a, b) = SocketPair();
        var peer = new ScriptedQmpPeer(b, handler);
        peer.Client = await QmpClient.ConnectAsync(new NetworkStream(a, ownsSocket: true));
        return peer;
    }

    private static (Socket, Socket) SocketPair()
    {
        var path = Path.Combine(Path.GetTempPath(), $"qmp-fake-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        var server = listener.Accept();
        File.Delete(path);
        return (client, server);
    }

    public async Task EmitAsync(string name, object data)
    {
        var message = new JsonObject
        {
            ["event"] = name,
            ["data"] = data as JsonObject ?? QmpJson.Args(data),
            ["timestamp"] = new JsonObject { ["seconds"] = 1700000000, ["microseconds"] = 0 },
        };
        await WriteAsync(message);
    }

    /// <summary>Emits JOB_STATUS_CHANGE for each status in turn.</summary>
    public async Task StatusAsync(string id, params string[] statuses)
    {
        foreach (var s in statuses)
        {
            await EmitAsync("JOB_STATUS_CHANGE", new JsonObject { ["id"] = id, ["status"] = s });
        }
    }

    private async Task WriteAsync(JsonObject message)
    {
        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString() + "\n");
        await _write.WaitAsync();
        try
        {
            await _stream.WriteAsync(bytes);
        }
        finally
        {
            _write.Release();
        }
    }

    private async Task LoopAsync()
    {
        await WriteAsync(JsonNode.Parse("""{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}""")!.AsObject());
        try
        {
            while (await _reader.ReadLineAsync() is { } line)
            {
                var msg = JsonNode.Parse(line)!.AsObject();
                var cmd = msg["execute"]!.GetValue<string>();
                var args = msg["arguments"] as JsonObject ?? new JsonObject();
                var id = msg["id"]?.DeepClone();
                Received.Enqueue((cmd, (JsonObject)args.DeepClone()));
                JsonNode? ret = cmd == "qmp_capabilities" ? new JsonObject() : await Handler(this, cmd, args);
                JsonObject reply = ret is JsonObject o && o["__error"] is JsonObject err
                    ? new JsonObject { ["error"] = err.DeepClone(), ["id"] = id }
                    : new JsonObject { ["return"] = ret?.DeepClone() ?? new JsonObject(), ["id"] = id };
                await WriteAsync(reply);
                if (AfterReply is { } after)
                {
                    AfterReply = null;
                    await after();
                }
            }
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Runs once after the next reply is written (to emit events that follow a command's return).</summary>
    public Func<Task>? AfterReply { get; set; }

    /// <summary>The peer's end of the socket closes, as when QEMU is killed: the client is left as it is.</summary>
    public void HangUp() => _server.Shutdown(SocketShutdown.Both);

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        _server.Dispose();
        await _loop;
        _write.Dispose();
    }
}
