using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LabKernel.Qmp;

namespace LabKernel.Libvirt;

/// <summary>
/// QMP to a libvirt domain's QEMU, the way the documents drive it with <c>virsh qemu-monitor-command</c>: a
/// <see cref="QmpClient"/> whose commands go through <c>virDomainQemuMonitorCommand</c> and whose events come
/// from <c>virConnectDomainQemuMonitorEventRegister</c>. Everything built on QMP (the <see cref="Block.BlockLayer"/>,
/// event-driven <see cref="Jobs.BlockJob"/>s, HMP through <c>human-monitor-command</c>) then works on the domain.
/// libvirt marks the domain tainted and does not follow graph changes made this way (its XML keeps the old chain).
/// </summary>
public static class LibvirtQmp
{
    /// <summary>Opens the QMP view of a running domain.</summary>
    public static async Task<QmpClient> ConnectAsync(LibvirtDomain domain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var stream = await LibvirtQmpStream.OpenAsync(domain, cancellationToken).ConfigureAwait(false);
        return await QmpClient.ConnectAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A block layer over <see cref="ConnectAsync"/>, with the domain's disk targets mapped to their device aliases
    /// (from the live XML), so <c>vda</c> names the same disk here as in <see cref="LibvirtBlock"/>.
    /// </summary>
    public static async Task<Block.BlockLayer> BlockLayerAsync(LibvirtDomain domain, QmpClient qmp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var xml = await domain.GetXmlAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return new Block.BlockLayer(qmp) { DeviceIds = DomainXml.DiskAliases(xml) };
    }
}

/// <summary>The QMP peer side, in process: greeting, capabilities, commands passed to libvirt, events fed back.</summary>
internal sealed class LibvirtQmpStream : Stream
{
    private readonly LibvirtDomain? _domain;
    private readonly Func<string, Task<string>> _passthrough;
    private readonly Channel<byte[]> _incoming = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly MemoryStream _partial = new();
    private readonly GCHandle _self;
    private readonly int _callbackId;
    private ReadOnlyMemory<byte> _current;
    private int _disposed;

    /// <summary>A stream over any passthrough (unit tests use a scripted one); events come through <see cref="PostEvent"/>.</summary>
    internal LibvirtQmpStream(Func<string, Task<string>> passthrough, string greeting)
    {
        _passthrough = passthrough;
        Enqueue(greeting);
    }

    private LibvirtQmpStream(LibvirtDomain domain, string greeting)
    {
        _domain = domain;
        _passthrough = json => domain.Monitor.QmpCommandTextAsync(json, CancellationToken.None, journal: false);
        _self = GCHandle.Alloc(this);
        Enqueue(greeting);
        LibvirtNative.virResetLastError();
        _callbackId = LibvirtNative.virConnectDomainQemuMonitorEventRegister(domain.Connection.Handle, domain.Handle, null, EventCallback, GCHandle.ToIntPtr(_self), 0, 0);
        if (_callbackId < 0)
        {
            var (code, dom, msg) = LibvirtException.ReadLastError();
            _self.Free();
            throw new LibvirtException("virConnectDomainQemuMonitorEventRegister", domain.What, code, dom, msg);
        }
    }

    public static async Task<LibvirtQmpStream> OpenAsync(LibvirtDomain domain, CancellationToken cancellationToken)
    {
        var version = JsonNode.Parse(await domain.Monitor.QmpCommandTextAsync("""{"execute":"query-version"}""", cancellationToken).ConfigureAwait(false));
        var greeting = new JsonObject
        {
            ["QMP"] = new JsonObject
            {
                ["version"] = version?["return"]?.DeepClone() ?? new JsonObject(),
                ["capabilities"] = new JsonArray(),
            },
        };
        return await Task.Run(() => new LibvirtQmpStream(domain, greeting.ToJsonString()), cancellationToken).ConfigureAwait(false);
    }

    private static unsafe nint EventCallback => (nint)(delegate* unmanaged<nint, nint, nint, long, uint, nint, nint, void>)&OnEvent;

    [UnmanagedCallersOnly]
    private static void OnEvent(nint conn, nint dom, nint name, long seconds, uint micros, nint details, nint opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is LibvirtQmpStream s)
            {
                s.PostEvent(Marshal.PtrToStringUTF8(name) ?? "", details == 0 ? null : Marshal.PtrToStringUTF8(details), seconds, micros);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Text.Json.JsonException)
        {
            // The stream is gone, or libvirt handed over something that is not JSON: nothing to deliver.
        }
    }

    /// <summary>Feeds one QEMU event (its name and the JSON of its <c>data</c>) to the client as QMP sends it.</summary>
    internal void PostEvent(string name, string? detailsJson, long seconds, uint micros)
    {
        var e = new JsonObject
        {
            ["event"] = name,
            ["data"] = (detailsJson is null ? null : JsonNode.Parse(detailsJson)) ?? new JsonObject(),
            ["timestamp"] = new JsonObject { ["seconds"] = seconds, ["microseconds"] = micros },
        };
        Enqueue(e.ToJsonString());
    }

    private void Enqueue(string line) => _incoming.Writer.TryWrite(Encoding.UTF8.GetBytes(line + "\n"));

    private void Handle(string line)
    {
        JsonObject command;
        try
        {
            command = JsonNode.Parse(line)?.AsObject() ?? throw new FormatException("empty");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            Enqueue(new JsonObject { ["error"] = new JsonObject { ["class"] = "GenericError", ["desc"] = $"not a QMP command: {e.Message}" } }.ToJsonString());
            return;
        }
        var id = command["id"]?.DeepClone();
        command.Remove("id");
        if (command["execute"]?.GetValue<string>() == "qmp_capabilities")
        {
            // libvirt negotiated capabilities on its own monitor long ago.
            Enqueue(new JsonObject { ["return"] = new JsonObject(), ["id"] = id }.ToJsonString());
            return;
        }
        _ = Task.Run(async () =>
        {
            JsonObject reply;
            try
            {
                var text = await _passthrough(command.ToJsonString()).ConfigureAwait(false);
                reply = JsonNode.Parse(text)?.AsObject() ?? new JsonObject { ["return"] = new JsonObject() };
            }
            catch (LibvirtException e)
            {
                reply = new JsonObject { ["error"] = new JsonObject { ["class"] = "GenericError", ["desc"] = e.LibvirtMessage } };
            }
            reply["id"] = id;
            Enqueue(reply.ToJsonString());
        });
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_current.IsEmpty)
        {
            if (!await _incoming.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }
            if (_incoming.Reader.TryRead(out var next))
            {
                _current = next;
            }
        }
        var n = Math.Min(buffer.Length, _current.Length);
        _current[..n].CopyTo(buffer);
        _current = _current[n..];
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        List<string> lines = [];
        lock (_partial)
        {
            foreach (var b in buffer)
            {
                if (b == (byte)'\n')
                {
                    lines.Add(Encoding.UTF8.GetString(_partial.GetBuffer(), 0, (int)_partial.Length));
                    _partial.SetLength(0);
                }
                else
                {
                    _partial.WriteByte(b);
                }
            }
        }
        foreach (var l in lines.Where(l => l.Trim().Length > 0))
        {
            Handle(l);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            if (_domain is not null)
            {
                if (!_domain.Connection.IsClosed)
                {
                    LibvirtNative.virConnectDomainQemuMonitorEventDeregister(_domain.Connection.Handle, _callbackId);
                }
                _self.Free();
            }
            _incoming.Writer.TryComplete();
        }
        base.Dispose(disposing);
    }
}
