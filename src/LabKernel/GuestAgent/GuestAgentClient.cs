using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel.Host;
using LabKernel.Journal;
using LabKernel.Qmp;

namespace LabKernel.GuestAgent;

/// <summary>
/// A qemu-guest-agent connection over the host side of the <c>org.qemu.guest_agent.0</c> virtio-serial port.
/// The agent protocol has no command ids, so one command is in flight at a time, and every exchange after a
/// timeout or a reconnect starts with a <c>guest-sync-delimited</c> handshake that skips stale bytes.
/// </summary>
public sealed class GuestAgentClient : IGuestAgent, IAsyncDisposable
{
    private const byte Delimiter = 0xFF;

    private readonly Stream _stream;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _bufferStart;
    private int _bufferEnd;
    private bool _needSync = true;

    private GuestAgentClient(Stream stream, TimeProvider? time = null)
    {
        _stream = stream;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Default time limit for one agent command.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Opens the agent's unix socket (QEMU's chardev). Does not wait for the guest; see <see cref="WaitUntilReadyAsync"/>.</summary>
    public static Task<GuestAgentClient> ConnectAsync(string socketPath, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ConnectAsync(socketPath, timeout, TimeProvider.System, cancellationToken);

    /// <summary>As <see cref="ConnectAsync(string, TimeSpan, CancellationToken)"/>, with the connect and every time limit after it on <paramref name="time"/>'s clock.</summary>
    public static async Task<GuestAgentClient> ConnectAsync(string socketPath, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(time);
        var socket = await UnixSockets.ConnectAsync(socketPath, timeout, "the guest agent socket", cancellationToken, time: time).ConfigureAwait(false);
        return new GuestAgentClient(new NetworkStream(socket, ownsSocket: true), time);
    }

    /// <summary>Wraps an open stream (tests use an in-memory peer).</summary>
    public static GuestAgentClient FromStream(Stream stream) => new(stream);

    /// <summary>As <see cref="FromStream(Stream)"/>, with every time limit on <paramref name="time"/>'s clock (tests use a fake one).</summary>
    public static GuestAgentClient FromStream(Stream stream, TimeProvider time) => new(stream, time);

    /// <summary>As <see cref="FromStream(Stream)"/>, with a message size limit other than the default.</summary>
    public static GuestAgentClient FromStream(Stream stream, int maxMessageBytes) => new(stream) { MaxMessageBytes = maxMessageBytes };

    /// <summary>
    /// Waits until the agent in the guest answers a <c>guest-sync-delimited</c>: each attempt waits a short while
    /// for the answer (250 ms, doubling up to 2 s, never past the limit), so a guest that is still booting is retried
    /// until <paramref name="timeout"/> (<see cref="Poll.UntilAsync{T}"/>; then a <see cref="LabTimeoutException"/>
    /// naming the handshake and the attempts). Returns the number of attempts. <paramref name="failFast"/>, asked
    /// before each attempt, gives up at once with its reason (the guest stopped).
    /// </summary>
    public async Task<int> WaitUntilReadyAsync(TimeSpan timeout, Func<string?>? failFast = null, CancellationToken cancellationToken = default)
    {
        var started = _time.GetTimestamp();
        var window = FirstSyncWindow;
        var attempts = 0;
        return await Poll.UntilAsync(async ct =>
        {
            attempts++;
            if (failFast?.Invoke() is { } why)
            {
                throw new GuestNotRunningException($"guest agent never answered: {why}");
            }
            // An attempt ends at the limit; the one look Poll takes at or after it gets the first window.
            var left = timeout == Timeout.InfiniteTimeSpan ? window : timeout - _time.GetElapsedTime(started);
            var attempt = left < FirstSyncWindow ? FirstSyncWindow : left < window ? left : window;
            await _lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await SyncAsync(attempt, ct).ConfigureAwait(false);
                return (true, attempts, "");
            }
            catch (LabTimeoutException)
            {
                window = TimeSpan.FromTicks(Math.Min(window.Ticks * 2, LastSyncWindow.Ticks));
                return (false, attempts, $"no answer to {attempts} guest-sync {(attempts == 1 ? "attempt" : "attempts")}");
            }
            finally
            {
                _lock.Release();
            }
        }, "the guest agent to answer guest-sync-delimited", timeout, NoPause, _time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How long the first <c>guest-sync-delimited</c> of <see cref="WaitUntilReadyAsync"/> waits for its answer.</summary>
    private static readonly TimeSpan FirstSyncWindow = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest any of them waits.</summary>
    private static readonly TimeSpan LastSyncWindow = TimeSpan.FromSeconds(2);

    /// <summary>Each attempt waits for its answer itself: the next one starts at once.</summary>
    private static readonly Backoff NoPause = new(TimeSpan.Zero, TimeSpan.Zero);

    /// <summary>Runs an agent command and returns its <c>return</c> member.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var json = Serialize(command, arguments);
        var entry = LabJournal.Current.Begin("agent", Abbreviate(json));
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var limit = timeout ?? CommandTimeout;
            if (_needSync)
            {
                // The resynchronization is part of the command: it takes no longer than the command's own limit (a
                // guest going down for a reboot answers neither, and a 5 s boot_id read must not wait 30 s here).
                await SyncAsync(limit < CommandTimeout ? limit : CommandTimeout, cancellationToken).ConfigureAwait(false);
            }
            await WriteAsync(Encoding.UTF8.GetBytes(json + "\n"), cancellationToken).ConfigureAwait(false);
            JsonObject reply;
            try
            {
                reply = await ReadMessageAsync(limit, $"the guest agent's reply to {command}", cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _needSync = true; // a late reply may still arrive; the next command resynchronizes.
                throw;
            }
            if (reply["error"] is JsonObject err)
            {
                // A garbled error still ends the call as the agent's error, not as a JSON type error.
                var cls = (err["class"] as JsonValue)?.GetValueKind() == JsonValueKind.String ? err["class"]!.GetValue<string>() : "GenericError";
                var desc = (err["desc"] as JsonValue)?.GetValueKind() == JsonValueKind.String ? err["desc"]!.GetValue<string>() : err["desc"]?.ToJsonString() ?? "";
                entry.Fail($"{cls}: {desc}");
                throw new GuestAgentErrorException(command, cls, desc);
            }
            var ret = reply["return"];
            reply.Remove("return");
            entry.Complete(Abbreviate(ret?.ToJsonString() ?? "{}"));
            return ret;
        }
        catch (Exception e) when (e is not GuestAgentErrorException)
        {
            entry.Fail(e.Message);
            throw;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <inheritdoc/>
    public void GuestRewound() => _needSync = true;

    /// <summary><c>guest-ping</c>.</summary>
    public Task PingAsync(CancellationToken cancellationToken = default) => ExecuteAsync("guest-ping", cancellationToken: cancellationToken);

    /// <summary>
    /// Runs a program in the guest with <c>guest-exec</c> (argv array, output captured) and waits for it with
    /// <c>guest-exec-status</c>. The time limit names the command when it passes; the process is then killed.
    /// </summary>
    public Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
        GuestExec.RunAsync(this, argv, options, cancellationToken);

    /// <summary>
    /// Starts a program in the guest with <c>guest-exec</c> and returns at once; the handle tells when it exits.
    /// Use it for workloads that run while the lab does something else (a writer during a snapshot).
    /// </summary>
    public Task<GuestProcess> StartAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
        GuestExec.StartAsync(this, argv, options, cancellationToken);

    /// <summary>
    /// <c>guest-shutdown</c> (power-down). The agent sends no reply when it succeeds, so this only sends it;
    /// wait for QEMU's SHUTDOWN event or process exit to know it happened.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default) => await ShutdownAsync("powerdown", cancellationToken).ConfigureAwait(false);

    /// <summary><c>guest-shutdown</c> with a mode: <c>powerdown</c>, <c>reboot</c> or <c>halt</c> (sent, not answered).</summary>
    public async Task ShutdownAsync(string mode, CancellationToken cancellationToken = default)
    {
        var json = Serialize("guest-shutdown", QmpJson.Args(new GuestShutdownArguments(mode)));
        var entry = LabJournal.Current.Begin("agent", json);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_needSync)
            {
                await SyncAsync(CommandTimeout, cancellationToken).ConfigureAwait(false);
            }
            await WriteAsync(Encoding.UTF8.GetBytes(json + "\n"), cancellationToken).ConfigureAwait(false);
            _needSync = true;
            entry.Complete("(sent; the agent does not reply to a successful shutdown)");
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// The handshake: send 0xFF (makes the agent's parser drop a partial command) and
    /// <c>guest-sync-delimited</c> with a random id; skip everything up to a 0xFF and then up to the reply that
    /// carries our id. Replies to earlier, abandoned commands are discarded on the way.
    /// </summary>
    private async Task SyncAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var id = RandomNumberGenerator.GetInt32(1, int.MaxValue);
        var cmd = Encoding.UTF8.GetBytes(Serialize("guest-sync-delimited", QmpJson.Args(new GuestSyncArguments(id))) + "\n");
        var msg = new byte[cmd.Length + 1];
        msg[0] = Delimiter;
        cmd.CopyTo(msg, 1);
        await WriteAsync(msg, cancellationToken).ConfigureAwait(false);
        await Poll.WithinAsync(async ct =>
        {
            while (true)
            {
                await SkipToDelimiterAsync(ct).ConfigureAwait(false);
                var reply = await ReadMessageCoreAsync(SyncAwaited, ct).ConfigureAwait(false);
                if (reply["return"] is JsonValue v && v.TryGetValue<long>(out var got) && got == id)
                {
                    _needSync = false;
                    return;
                }
            }
        }, SyncAwaited, timeout, time: _time, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private const string SyncAwaited = "the guest agent to answer guest-sync-delimited";

    private async Task SkipToDelimiterAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var i = Array.IndexOf(_buffer, Delimiter, _bufferStart, _bufferEnd - _bufferStart);
            if (i >= 0)
            {
                _bufferStart = i + 1;
                return;
            }
            _bufferStart = _bufferEnd = 0;
            await FillAsync(SyncAwaited, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads one JSON object; the agent ends each with a newline, and sends no newlines inside one.</summary>
    /// <remarks>
    /// The limit is for the whole message, not for each read (<see cref="Poll.WithinAsync{T}"/> cancels the read in
    /// progress): a guest that trickles a byte at a time cannot hold a call past it. A message longer than
    /// <see cref="MaxMessageBytes"/> ends the call with a <see cref="LabException"/>.
    /// </remarks>
    private Task<JsonObject> ReadMessageAsync(TimeSpan timeout, string awaited, CancellationToken cancellationToken) =>
        Poll.WithinAsync(ct => ReadMessageCoreAsync(awaited, ct), awaited, timeout, time: _time, cancellationToken: cancellationToken);

    /// <summary>Reads one JSON object, however long it takes (the caller's token limits it).</summary>
    private async Task<JsonObject> ReadMessageCoreAsync(string awaited, CancellationToken cancellationToken)
    {
        using var line = new MemoryStream();
        while (true)
        {
            var span = _buffer.AsSpan(_bufferStart, _bufferEnd - _bufferStart);
            var nl = span.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                line.Write(span[..nl]);
                _bufferStart += nl + 1;
                var bytes = line.ToArray().AsSpan();
                var text = Encoding.UTF8.GetString(bytes.TrimStart(Delimiter)).Trim();
                line.SetLength(0);
                if (text.Length == 0)
                {
                    continue;
                }
                try
                {
                    if (JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) is JsonObject o)
                    {
                        return o;
                    }
                }
                catch (JsonException)
                {
                    // Stale partial output from before a resync; keep reading.
                }
                continue;
            }
            line.Write(span);
            _bufferStart = _bufferEnd = 0;
            if (line.Length > MaxMessageBytes)
            {
                _needSync = true;
                throw new LabException($"the guest agent sent a message longer than {MaxMessageBytes} bytes while the lab waited for {awaited}");
            }
            await FillAsync(awaited, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The longest agent message accepted (guest-file-read returns at most 48 MiB, base64-encoded).</summary>
    public int MaxMessageBytes { get; init; } = 72 << 20;

    /// <summary>Reads what the agent sent next into the buffer; the caller's token (a limit's) cancels the read.</summary>
    private async Task FillAsync(string awaited, CancellationToken cancellationToken)
    {
        int n;
        try
        {
            n = await _stream.ReadAsync(_buffer.AsMemory(_bufferEnd), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new LabException($"guest agent connection lost waiting for {awaited}: {e.Message}", e);
        }
        if (n == 0)
        {
            throw new LabException($"guest agent connection closed while waiting for {awaited}");
        }
        _bufferEnd += n;
    }

    private async Task WriteAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw new LabException($"guest agent connection lost: {e.Message}", e);
        }
    }

    private static string Serialize(string command, JsonObject? arguments)
    {
        var o = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            o["arguments"] = arguments.DeepClone();
        }
        return o.ToJsonString();
    }


    private static string Abbreviate(string s) => s.Length <= 300 ? s : s[..300] + $"… ({s.Length} chars)";

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _lock.Dispose();
        return ValueTask.CompletedTask;
    }
}
