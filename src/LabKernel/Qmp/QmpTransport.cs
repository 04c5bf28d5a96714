using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabKernel.Qmp;

/// <summary>
/// What carries one QMP connection's messages: send a message, receive the next one (the greeting, replies and
/// events, in the order QEMU sent them). <see cref="QmpClient"/> sits on it: a unix socket to QEMU
/// (<see cref="StreamQmpTransport"/>) or libvirt's monitor passthrough with its events
/// (<see cref="Libvirt.LibvirtQmpTransport"/>).
/// </summary>
public interface IQmpTransport : IAsyncDisposable
{
    /// <summary>Sends one message. Throws <see cref="QmpDisconnectedException"/> when the connection is gone.</summary>
    ValueTask SendAsync(JsonObject message, CancellationToken cancellationToken = default);

    /// <summary>
    /// The next message from QEMU; null when the connection closed cleanly. Throws
    /// <see cref="QmpProtocolException"/> for a message that is not a JSON object or is larger than the limit.
    /// </summary>
    ValueTask<JsonObject?> ReceiveAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// QMP over a byte stream (QEMU's unix socket): one JSON object per line, each at most
/// <see cref="MaxMessageBytes"/> long, so a peer that never ends a line cannot grow the lab's memory without bound.
/// </summary>
public sealed class StreamQmpTransport : IQmpTransport
{
    /// <summary>The default limit: QEMU's largest replies (query-named-block-nodes of a deep chain) are a few MiB.</summary>
    public const int DefaultMaxMessageBytes = 32 << 20;

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[1 << 16];
    private readonly MemoryStream _line = new();
    private int _start;
    private int _end;

    public StreamQmpTransport(Stream stream, int maxMessageBytes = DefaultMaxMessageBytes)
    {
        _stream = stream ?? throw new ArgumentNullException(nameof(stream));
        MaxMessageBytes = maxMessageBytes;
    }

    /// <summary>The longest line accepted; a longer one ends the connection with <see cref="QmpProtocolException"/>.</summary>
    public int MaxMessageBytes { get; }

    public async ValueTask SendAsync(JsonObject message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString() + "\n");
        try
        {
            await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw new QmpDisconnectedException($"QMP connection lost while sending: {e.Message}", e);
        }
    }

    public async ValueTask<JsonObject?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                return null;
            }
            if (line.Length > 0 && !line.AsSpan().Trim(" \t\r"u8).IsEmpty)
            {
                return Parse(line);
            }
        }
    }

    private async ValueTask<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
    {
        _line.SetLength(0);
        while (true)
        {
            if (_start == _end)
            {
                int n;
                try
                {
                    n = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    throw new QmpDisconnectedException($"QMP connection lost: {e.Message}", e);
                }
                if (n == 0)
                {
                    return null;
                }
                _start = 0;
                _end = n;
            }
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            var take = (newline < 0 ? _end : newline) - _start;
            if (_line.Length + take > MaxMessageBytes)
            {
                throw new QmpProtocolException($"QMP message longer than {MaxMessageBytes} bytes");
            }
            _line.Write(_buffer, _start, take);
            if (newline < 0)
            {
                _start = _end;
                continue;
            }
            _start = newline + 1;
            return _line.ToArray();
        }
    }

    internal static JsonObject Parse(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject ?? throw new QmpProtocolException($"QMP message is not an object: {Shorten(utf8)}");
        }
        catch (JsonException e)
        {
            throw new QmpProtocolException($"QMP sent invalid JSON ({e.Message}): {Shorten(utf8)}");
        }
    }

    private static string Shorten(ReadOnlySpan<byte> utf8)
    {
        var s = Encoding.UTF8.GetString(utf8[..Math.Min(utf8.Length, 200)]);
        return utf8.Length <= 200 ? s : s + "…";
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            _stream.Dispose();
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }
}
