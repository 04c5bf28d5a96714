using System.Runtime.InteropServices;
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
        var transport = await LibvirtQmpTransport.OpenAsync(domain, cancellationToken).ConfigureAwait(false);
        return await QmpClient.ConnectAsync(transport, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A block layer over <see cref="ConnectAsync"/>, with the domain's disk targets mapped to their device aliases
    /// (from the live XML), so <c>vda</c> names the same disk here as in <see cref="LibvirtBlock"/>. Make one per
    /// connection and keep it (it holds the connection's remembered chains).
    /// </summary>
    public static async Task<Block.BlockLayer> BlockLayerAsync(LibvirtDomain domain, QmpClient qmp, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var xml = await domain.GetXmlAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var host = await domain.Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
        return new Block.BlockLayer(qmp) { DeviceIds = DomainXml.DiskAliases(xml), Host = host };
    }
}

/// <summary>
/// QMP through libvirt (an <see cref="IQmpTransport"/>): each command goes to <c>virDomainQemuMonitorCommand</c> as
/// it is, its reply comes back with the command's id; QEMU's events arrive through
/// <c>virConnectDomainQemuMonitorEventRegister</c>. The greeting is made from <c>query-version</c>, and
/// <c>qmp_capabilities</c> is answered here, since libvirt negotiated its monitor long ago.
/// </summary>
public sealed class LibvirtQmpTransport : IQmpTransport
{
    private readonly LibvirtDomain? _domain;
    private readonly Func<string, Task<string>> _passthrough;
    private readonly Channel<JsonObject> _incoming = Channel.CreateUnbounded<JsonObject>(new UnboundedChannelOptions { SingleReader = true });
    private readonly GCHandle _self;
    private readonly IDisposable? _restored;
    private int _callbackId;
    private int _disposed;

    /// <summary>A transport over any passthrough (unit tests use a scripted one); events come through <see cref="PostEvent"/>.</summary>
    internal LibvirtQmpTransport(Func<string, Task<string>> passthrough, JsonObject greeting)
    {
        _passthrough = passthrough;
        _incoming.Writer.TryWrite(greeting);
    }

    private LibvirtQmpTransport(LibvirtDomain domain, JsonObject greeting)
    {
        _domain = domain;
        _passthrough = json => domain.Monitor.QmpCommandTextAsync(json, CancellationToken.None, journal: false);
        _self = GCHandle.Alloc(this);
        _incoming.Writer.TryWrite(greeting);
        LibvirtNative.virResetLastError();
        try
        {
            _callbackId = RegisterEvents(domain);
        }
        catch
        {
            _self.Free();
            throw;
        }
        // After libvirtd restarted and the connection was opened again, QEMU's events are asked for again on it
        // (those sent in between are lost, as with libvirt's own events).
        _restored = domain.Connection.OnReopened(() =>
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                try
                {
                    _callbackId = RegisterEvents(domain);
                }
                catch (LibvirtException)
                {
                    // The domain is gone with libvirtd's restart: commands will say so.
                }
            }
        });
    }

    private int RegisterEvents(LibvirtDomain domain)
    {
        LibvirtNative.virResetLastError();
        var id = LibvirtNative.virConnectDomainQemuMonitorEventRegister(domain.Connection.Handle, domain.Handle, null, EventCallback, GCHandle.ToIntPtr(_self), 0, 0);
        if (id < 0)
        {
            var (code, dom, msg) = LibvirtException.ReadLastError();
            throw new LibvirtException("virConnectDomainQemuMonitorEventRegister", domain.What, code, dom, msg);
        }
        return id;
    }

    /// <summary>Opens the transport to a running domain's QEMU (the greeting from <c>query-version</c>).</summary>
    public static async Task<LibvirtQmpTransport> OpenAsync(LibvirtDomain domain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var version = JsonNode.Parse(await domain.Monitor.QmpCommandTextAsync("""{"execute":"query-version"}""", cancellationToken).ConfigureAwait(false));
        var greeting = Greeting(version?["return"]?.DeepClone() as JsonObject);
        return await Task.Run(() => new LibvirtQmpTransport(domain, greeting), cancellationToken).ConfigureAwait(false);
    }

    internal static JsonObject Greeting(JsonObject? version) => new()
    {
        ["QMP"] = new JsonObject { ["version"] = version ?? new JsonObject(), ["capabilities"] = new JsonArray() },
    };

    private static unsafe nint EventCallback => (nint)(delegate* unmanaged<nint, nint, nint, long, uint, nint, nint, void>)&OnEvent;

    [UnmanagedCallersOnly]
    private static void OnEvent(nint conn, nint dom, nint name, long seconds, uint micros, nint details, nint opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is LibvirtQmpTransport t)
            {
                t.PostEvent(Marshal.PtrToStringUTF8(name) ?? "", details == 0 ? null : Marshal.PtrToStringUTF8(details), seconds, micros);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Text.Json.JsonException)
        {
            // The transport is gone, or libvirt handed over something that is not JSON: nothing to deliver.
        }
    }

    /// <summary>Delivers one QEMU event (its name and the JSON of its <c>data</c>) as QMP would send it.</summary>
    internal void PostEvent(string name, string? detailsJson, long seconds, uint micros) =>
        _incoming.Writer.TryWrite(new JsonObject
        {
            ["event"] = name,
            ["data"] = (detailsJson is null ? null : JsonNode.Parse(detailsJson)) ?? new JsonObject(),
            ["timestamp"] = new JsonObject { ["seconds"] = seconds, ["microseconds"] = (long)micros },
        });

    public ValueTask SendAsync(JsonObject message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new QmpDisconnectedException("the libvirt QMP passthrough is closed");
        }
        var command = (JsonObject)message.DeepClone();
        var id = command["id"]?.DeepClone();
        command.Remove("id");
        if (command["execute"]?.GetValue<string>() == "qmp_capabilities")
        {
            _incoming.Writer.TryWrite(new JsonObject { ["return"] = new JsonObject(), ["id"] = id });
            return ValueTask.CompletedTask;
        }
        // Replies may come back in any order, as QMP's own may: the client matches them by id.
        _ = Task.Run(async () =>
        {
            JsonObject reply;
            try
            {
                var text = await _passthrough(command.ToJsonString()).ConfigureAwait(false);
                reply = StreamQmpTransport.Parse(System.Text.Encoding.UTF8.GetBytes(text));
            }
            catch (LibvirtException e)
            {
                reply = new JsonObject { ["error"] = new JsonObject { ["class"] = "GenericError", ["desc"] = e.LibvirtMessage } };
            }
            catch (QmpProtocolException e)
            {
                reply = new JsonObject { ["error"] = new JsonObject { ["class"] = "GenericError", ["desc"] = e.Message } };
            }
            reply["id"] = id?.DeepClone();
            _incoming.Writer.TryWrite(reply);
        }, CancellationToken.None);
        return ValueTask.CompletedTask;
    }

    public async ValueTask<JsonObject?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (await _incoming.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_incoming.Reader.TryRead(out var message))
            {
                return message;
            }
        }
        return null;
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _restored?.Dispose();
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
        return ValueTask.CompletedTask;
    }
}
