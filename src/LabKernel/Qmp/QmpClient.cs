using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel.Host;
using LabKernel.Journal;

namespace LabKernel.Qmp;

/// <summary>
/// A QMP (QEMU Machine Protocol) connection over an <see cref="IQmpTransport"/>. Reads the greeting, negotiates
/// capabilities, then one reader task routes each reply to the command with the same id and each event to the
/// listeners registered at that time. When the connection drops, or the peer sends something that is not QMP
/// (invalid JSON, an oversized message), every pending command fails at once with
/// <see cref="QmpDisconnectedException"/> carrying the cause; <see cref="IsConnected"/> is false before the first
/// of them fails, so a caller that catches the failure and asks sees the connection gone.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly IQmpTransport _transport;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, Pending> _pending = new();
    private readonly List<QmpEventListener> _listeners = [];
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time;
    private Task? _readLoop;
    private long _nextId;
    // Set once, first thing when the connection ends: IsConnected reads it, so it is false before any call fails.
    private QmpDisconnectedException? _failure;

    private QmpClient(IQmpTransport transport, TimeProvider time)
    {
        _transport = transport;
        _time = time;
    }

    /// <summary>The greeting's QEMU version, e.g. 7.2.0.</summary>
    public Version QemuVersion { get; private set; } = new(0, 0);

    /// <summary>The capabilities QEMU offered in its greeting.</summary>
    public IReadOnlyList<string> Capabilities { get; private set; } = [];

    /// <summary>Default time limit for a command's reply.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The clock of this connection's waits (commands, events), which the block layer over it shares.</summary>
    internal TimeProvider Time => _time;

    /// <summary>
    /// Completes when the connection closes, after every pending call and listener has been failed; faulted never
    /// (check <see cref="IsConnected"/>).
    /// </summary>
    public Task Closed => _closed.Task;

    /// <summary>False from the moment the connection is lost or disposed, before any pending call fails because of it.</summary>
    public bool IsConnected => Volatile.Read(ref _failure) is null;

    /// <summary>Raised on the reader task for every event (keep handlers short).</summary>
    public event Action<QmpEvent>? EventReceived;

    /// <summary>Connects to a QMP unix socket, waiting up to <paramref name="timeout"/> for it to appear.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, TimeSpan timeout, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        var socket = await UnixSockets.ConnectAsync(socketPath, timeout, "the QMP socket", cancellationToken, time: time).ConfigureAwait(false);
        return await ConnectAsync(new NetworkStream(socket, ownsSocket: true), time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs the QMP handshake over an already open stream (tests use an in-memory peer).</summary>
    public static Task<QmpClient> ConnectAsync(Stream stream, TimeProvider? time = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(new StreamQmpTransport(stream), time, cancellationToken);

    /// <summary>Runs the QMP handshake over a transport: a socket, libvirt's monitor passthrough, or a test's peer.</summary>
    public static async Task<QmpClient> ConnectAsync(IQmpTransport transport, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        var client = new QmpClient(transport, time ?? TimeProvider.System);
        try
        {
            await client.HandshakeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return client;
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(CommandTimeout);
        JsonObject? greeting;
        try
        {
            greeting = await _transport.ReceiveAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LabTimeoutException("the QMP greeting", CommandTimeout);
        }
        if (greeting is null)
        {
            throw new QmpDisconnectedException("QMP socket closed before the greeting");
        }
        if (greeting["QMP"] is not JsonObject qmp)
        {
            throw new QmpProtocolException($"expected a QMP greeting, got: {Shorten(greeting.ToJsonString())}");
        }
        if (qmp["version"]?["qemu"] is JsonObject v)
        {
            QemuVersion = new Version(v["major"]?.GetValue<int>() ?? 0, v["minor"]?.GetValue<int>() ?? 0, v["micro"]?.GetValue<int>() ?? 0);
        }
        Capabilities = qmp["capabilities"] is JsonArray caps ? caps.Select(c => c!.GetValue<string>()).ToArray() : [];
        _readLoop = Task.Run(ReadLoopAsync, CancellationToken.None);
        await ExecuteAsync("qmp_capabilities", cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Registers a listener for events passing <paramref name="filter"/>. Events that arrive after this call are
    /// delivered, so register before the command that causes the event.
    /// </summary>
    public QmpEventListener Listen(Func<QmpEvent, bool>? filter = null)
    {
        var listener = new QmpEventListener(filter, Unregister, _time);
        lock (_listeners)
        {
            if (_failure is not null)
            {
                listener.Complete(_failure);
            }
            else
            {
                _listeners.Add(listener);
            }
        }
        return listener;
    }

    /// <summary>Listens for the named events only.</summary>
    public QmpEventListener Listen(params string[] eventNames) => Listen(e => eventNames.Contains(e.Name));

    private void Unregister(QmpEventListener l)
    {
        lock (_listeners)
        {
            _listeners.Remove(l);
        }
    }

    /// <summary>
    /// Sends <c>{"execute": command, "arguments": ..., "id": ...}</c> and returns the <c>return</c> member.
    /// A QMP error becomes <see cref="QmpErrorException"/>.
    /// </summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var id = $"lab-{Interlocked.Increment(ref _nextId)}";
        var message = new JsonObject { ["execute"] = command };
        if (arguments is not null && arguments.Count > 0)
        {
            message["arguments"] = arguments.DeepClone();
        }
        message["id"] = id;
        var json = message.ToJsonString();
        var pending = new Pending();
        if (!_pending.TryAdd(id, pending))
        {
            throw new InvalidOperationException("duplicate QMP id");
        }
        // After the add: Fail sets _failure before it fails the pending calls, so a call added too late for Fail to
        // see is refused here.
        if (Volatile.Read(ref _failure) is { } failure)
        {
            _pending.TryRemove(id, out _);
            throw new QmpDisconnectedException($"QMP connection is closed; cannot send {command}", failure);
        }

        var entry = LabJournal.Current.Begin("qmp", WithoutId(json));
        try
        {
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await _transport.SendAsync(message, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        catch (Exception e) when (e is QmpDisconnectedException or IOException or SocketException or ObjectDisposedException)
        {
            _pending.TryRemove(id, out _);
            entry.Fail(e.Message);
            var lost = new QmpDisconnectedException($"QMP connection lost sending {command}: {e.Message}", e);
            // A transport that cannot send is gone (and a stream may now hold half a message): the connection ends
            // here, before this call fails, so the caller sees it disconnected and the other calls do not wait out
            // their limits for replies that cannot come.
            Fail(lost);
            throw lost;
        }

        var limit = timeout ?? CommandTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        using var reg = cts.Token.Register(() => pending.Reply.TrySetCanceled());
        JsonObject reply;
        try
        {
            reply = await pending.Reply.Task.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _pending.TryRemove(id, out _);
            entry.Fail("no reply");
            throw new LabTimeoutException($"QEMU's reply to {command}", limit);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }

        if (reply["error"] is JsonObject err)
        {
            var cls = err["class"]?.GetValue<string>() ?? "GenericError";
            var desc = err["desc"]?.GetValue<string>() ?? "(no description)";
            entry.Fail($"{cls}: {desc}");
            throw new QmpErrorException(cls, desc, json);
        }
        var ret = reply["return"];
        reply.Remove("return");
        entry.Complete(ret?.ToJsonString() ?? "{}");
        return ret;
    }

    /// <summary>Executes a command and deserializes its return value.</summary>
    public async Task<T> ExecuteAsync<T>(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var node = await ExecuteAsync(command, arguments, timeout, cancellationToken).ConfigureAwait(false);
        return node.Deserialize<T>(QmpJson.Options)
            ?? throw new QmpProtocolException($"{command} returned null where {typeof(T).Name} was expected");
    }

    /// <summary>Runs an HMP (human monitor) command through <c>human-monitor-command</c> and returns its text output.</summary>
    public async Task<string> HumanMonitorCommandAsync(string commandLine, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var ret = await ExecuteAsync("human-monitor-command", QmpJson.Args(new HumanMonitorCommandArguments(commandLine)), timeout, cancellationToken).ConfigureAwait(false);
        return ret?.GetValue<string>() ?? "";
    }

    private async Task ReadLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (await _transport.ReceiveAsync().ConfigureAwait(false) is { } message)
            {
                Dispatch(message);
            }
        }
        catch (Exception e)
        {
            // Whatever ends the reader (the peer went away, a message that is not QMP, a bug in a listener) ends
            // the connection: every pending call fails now with the cause instead of waiting out its time limit.
            error = e;
        }
        Fail(error as QmpDisconnectedException ?? new QmpDisconnectedException(
            error is null ? "QEMU closed the QMP connection" : $"QMP connection lost: {error.Message}", error));
    }

    private void Dispatch(JsonObject message)
    {
        if (message.ContainsKey("event"))
        {
            var e = QmpEvent.FromMessage(message);
            QmpEventListener[] listeners;
            lock (_listeners)
            {
                listeners = _listeners.ToArray();
            }
            foreach (var l in listeners)
            {
                l.Offer(e);
            }
            EventReceived?.Invoke(e);
            return;
        }
        var id = message["id"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        if (id is not null && _pending.TryRemove(id, out var pending))
        {
            pending.Reply.TrySetResult(message);
        }
        // A reply without a known id (a command that timed out, or an id-less error) is dropped.
    }

    /// <summary>
    /// Ends the connection: first the state (<see cref="IsConnected"/> false, no new call or listener accepted), then
    /// every pending call and listener fails with the first cause, then <see cref="Closed"/> completes. In that order,
    /// so whoever is woken by a failure sees the client disconnected.
    /// </summary>
    private void Fail(QmpDisconnectedException error)
    {
        QmpEventListener[] listeners;
        lock (_listeners)
        {
            Interlocked.CompareExchange(ref _failure, error, null);
            error = _failure!;
            listeners = _listeners.ToArray();
            _listeners.Clear();
        }
        foreach (var (_, p) in _pending)
        {
            p.Reply.TrySetException(error);
        }
        _pending.Clear();
        foreach (var l in listeners)
        {
            l.Complete(error);
        }
        _closed.TrySetResult();
    }

    private static string WithoutId(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        node.Remove("id");
        return node.ToJsonString();
    }

    private static string Shorten(string s) => s.Length <= 200 ? s : s[..200] + "…";

    public async ValueTask DisposeAsync()
    {
        await _transport.DisposeAsync().ConfigureAwait(false);
        if (_readLoop is not null)
        {
            await _readLoop.ConfigureAwait(false);
        }
        Fail(new QmpDisconnectedException("QMP client disposed"));
        _writeLock.Dispose();
    }

    private sealed class Pending
    {
        public TaskCompletionSource<JsonObject> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary><c>human-monitor-command</c>'s arguments: one HMP command line, as typed at the monitor.</summary>
    private sealed record HumanMonitorCommandArguments(string CommandLine);
}

/// <summary>JSON settings for QMP payloads: QEMU uses kebab-case member names.</summary>
public static class QmpJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.KebabCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Builds a QMP arguments object from an anonymous object or record, in kebab-case, skipping nulls.</summary>
    public static JsonObject Args(object value) => (JsonObject)JsonSerializer.SerializeToNode(value, value.GetType(), Options)!;
}
