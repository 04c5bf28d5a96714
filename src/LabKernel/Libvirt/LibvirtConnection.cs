using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using LabKernel.Host;

namespace LabKernel.Libvirt;

/// <summary>A domain lifecycle event (<c>VIR_DOMAIN_EVENT_ID_LIFECYCLE</c>).</summary>
public enum DomainLifecycleEvent
{
    Defined = 0,
    Undefined = 1,
    Started = 2,
    Suspended = 3,
    Resumed = 4,
    Stopped = 5,
    Shutdown = 6,
    PmSuspended = 7,
    Crashed = 8,
}

/// <summary>libvirt's block job types (<c>virDomainBlockJobType</c>).</summary>
public enum LibvirtBlockJobType
{
    Unknown = 0,
    Pull = 1,
    Copy = 2,
    Commit = 3,
    ActiveCommit = 4,
    Backup = 5,
}

/// <summary>libvirt's block job event status (<c>virConnectDomainEventBlockJobStatus</c>).</summary>
public enum LibvirtBlockJobStatus
{
    Completed = 0,
    Failed = 1,
    Cancelled = 2,
    Ready = 3,
}

/// <summary>An event libvirt delivered for a domain, in delivery order.</summary>
public abstract record LibvirtDomainEvent(string Domain, DateTimeOffset At);

/// <summary>A lifecycle event: started, stopped, shutdown, ... with libvirt's detail code.</summary>
public sealed record DomainLifecycleEventRecord(string Domain, DateTimeOffset At, DomainLifecycleEvent Event, int Detail) : LibvirtDomainEvent(Domain, At);

/// <summary>
/// The connection to libvirtd closed under the lab (libvirtd restarted or stopped, keepalive lost); <c>Reason</c> is
/// libvirt's <c>virConnectCloseReason</c> (0 error, 1 end of file, 2 keepalive, 3 client). Domain is empty.
/// </summary>
public sealed record ConnectionClosedEventRecord(DateTimeOffset At, int Reason) : LibvirtDomainEvent("", At);

/// <summary>The lab opened the connection again (<see cref="LibvirtConnection.ReconnectAsync"/>); Domain is empty.</summary>
public sealed record ConnectionRestoredEventRecord(DateTimeOffset At, int Generation) : LibvirtDomainEvent("", At);

/// <summary>A <c>VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2</c> event: the disk is named by its target (<c>vda</c>).</summary>
public sealed record BlockJobEventRecord(string Domain, DateTimeOffset At, string Disk, LibvirtBlockJobType Type, LibvirtBlockJobStatus Status) : LibvirtDomainEvent(Domain, At);

/// <summary>
/// A connection to libvirtd through libvirt's C API (<c>virConnectOpen</c>), by default to <c>qemu:///system</c>;
/// <c>qemu+ssh://user@host/system</c> reaches a remote hypervisor. The connection registers for lifecycle and
/// BLOCK_JOB_2 events of every domain (<c>virConnectDomainEventRegisterAny</c>); libvirt delivers them on the
/// process's event loop thread and the connection hands them, in order, to <see cref="LibvirtBlockJob"/>s and
/// waits. Thread-safe; dispose to close.
/// </summary>
public sealed class LibvirtConnection : IAsyncDisposable, IDisposable
{
    public const string DefaultUri = "qemu:///system";

    private readonly GCHandle _self;
    private readonly SemaphoreSlim _reconnect = new(1, 1);
    private ConnectHandle _handle;
    private int[] _callbacks;
    private int _generation;
    private int _closed;
    private readonly Channel<LibvirtDomainEvent> _events = Channel.CreateUnbounded<LibvirtDomainEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<long, Action<LibvirtDomainEvent>> _listeners = new();
    private readonly Task _dispatcher;
    private long _nextListener;
    private int _disposed;

    private LibvirtConnection(string uri, ConnectHandle handle)
    {
        Uri = uri;
        _handle = handle;
        _self = GCHandle.Alloc(this);
        _dispatcher = Task.Run(DispatchAsync);
        _callbacks = Register(handle);
    }

    /// <summary>The domain events the lab follows and the close callback, on <paramref name="handle"/>; returns the event ids.</summary>
    private int[] Register(ConnectHandle handle)
    {
        var opaque = GCHandle.ToIntPtr(_self);
        int[] ids =
        [
            RegisterEvent(handle, Vir.EventIdLifecycle, LifecycleCallback, opaque, "LIFECYCLE"),
            RegisterEvent(handle, Vir.EventIdBlockJob2, BlockJobCallback, opaque, "BLOCK_JOB_2"),
        ];
        LibvirtRuntime.Call("virConnectRegisterCloseCallback", Uri, "virConnectRegisterCloseCallback(conn)",
            () => LibvirtNative.virConnectRegisterCloseCallback(handle, CloseCallback, opaque, 0));
        return ids;
    }

    /// <summary>
    /// How many times the connection was opened again after libvirtd went away (<see cref="ReconnectAsync"/>).
    /// Domains look themselves up again when it changes.
    /// </summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>False once libvirtd closed the connection (until <see cref="ReconnectAsync"/> opens it again).</summary>
    public bool IsAlive => Volatile.Read(ref _closed) == 0 && LibvirtNative.virConnectIsAlive(_handle) == 1;

    /// <summary>How long <see cref="ReconnectAsync"/> waits for libvirtd by default (a restart takes seconds).</summary>
    public TimeSpan ReconnectLimit { get; init; } = DefaultReconnectLimit();

    /// <summary>
    /// Whole seconds a run waits for a libvirtd that went away before it gives up on the host (<see cref="ReconnectLimit"/>);
    /// `lab sweep` sets it for the runs on a host whose hosts-file entry has <c>reconnect</c>.
    /// </summary>
    public const string ReconnectVariable = "LAB_LIBVIRT_RECONNECT_SECONDS";

    /// <summary>The reconnect limit without <see cref="ReconnectVariable"/>.</summary>
    public static readonly TimeSpan StandardReconnectLimit = TimeSpan.FromSeconds(60);

    /// <summary><see cref="ReconnectVariable"/>'s seconds, or <see cref="StandardReconnectLimit"/>; a value that is not a whole number from 1 is one line.</summary>
    public static TimeSpan DefaultReconnectLimit() => ReconnectLimitFrom(Environment.GetEnvironmentVariable(ReconnectVariable));

    /// <summary>The reconnect limit <see cref="ReconnectVariable"/>'s value <paramref name="text"/> gives.</summary>
    public static TimeSpan ReconnectLimitFrom(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return StandardReconnectLimit;
        }
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds >= 1
            ? TimeSpan.FromSeconds(seconds)
            : throw new LabUsageException($"{ReconnectVariable}={text}: expected whole seconds, at least 1");
    }

    /// <summary>
    /// Opens the connection again when libvirtd closed it (restarted): waits, backing off, until libvirtd accepts
    /// connections, registers the events again, and bumps <see cref="Generation"/>. Events libvirtd sent while the
    /// lab was away are lost: whoever waits on one samples the state again (<see cref="LibvirtBlockJob"/> does).
    /// Does nothing while the connection is alive. Throws <see cref="LibvirtConnectionLostException"/> naming the URI at the limit.
    /// </summary>
    public async Task ReconnectAsync(TimeSpan? limit = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await _reconnect.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsAlive)
            {
                return;
            }
            ConnectHandle? fresh;
            try
            {
                fresh = await Poll.UntilAsync<ConnectHandle?>(ct => Task.Run(() =>
                {
                    try
                    {
                        var h = LibvirtRuntime.CallHandle("virConnectOpen", Uri, $"virConnectOpen(\"{LabHosts.ForLibvirt(Uri)}\") again",
                            () => LibvirtNative.virConnectOpen(LabHosts.ForLibvirt(Uri)),
                            (code, dom, msg) => new LibvirtConnectionException(Uri, code, dom, msg));
                        return (true, (ConnectHandle?)h, "");
                    }
                    catch (LibvirtConnectionException e)
                    {
                        return (false, (ConnectHandle?)null, e.LibvirtMessage);
                    }
                }, ct), $"libvirtd at {Uri} to accept connections again", limit ?? ReconnectLimit, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (LabTimeoutException e)
            {
                throw new LibvirtConnectionLostException(Uri, limit ?? ReconnectLimit, e.Message, e);
            }
            var old = _handle;
            var ids = Register(fresh!);
            _handle = fresh!;
            _callbacks = ids;
            Interlocked.Increment(ref _generation);
            Volatile.Write(ref _closed, 0);
            LibvirtNative.virConnectUnregisterCloseCallback(old, CloseCallback);
            old.Dispose();
            // Before any call is retried on the new connection: what registered on the old one does it again now,
            // so no event of the retried call can come before its registration.
            foreach (var reopened in _reopened.Values)
            {
                reopened();
            }
            _events.Writer.TryWrite(new ConnectionRestoredEventRecord(Time.GetUtcNow(), Generation));
        }
        finally
        {
            _reconnect.Release();
        }
    }

    private readonly ConcurrentDictionary<long, Action> _reopened = new();

    /// <summary>
    /// Runs <paramref name="action"/> each time <see cref="ReconnectAsync"/> has opened the connection again, before
    /// it returns (for registrations of one's own on the connection, such as QEMU monitor events). Dispose to stop.
    /// </summary>
    internal IDisposable OnReopened(Action action)
    {
        var id = Interlocked.Increment(ref _nextListener);
        _reopened[id] = action;
        return new Unsubscriber(() => _reopened.TryRemove(id, out _));
    }

    /// <summary>True when <paramref name="e"/> came from a connection libvirtd has closed (a retry after <see cref="ReconnectAsync"/> may succeed).</summary>
    internal bool IsLostConnection(LibvirtException e) => !IsAlive && e is not LibvirtDomainNotFoundException;

    /// <summary>The URI this connection was opened with.</summary>
    public string Uri { get; }

    /// <summary>
    /// True when the URI's host is this machine (no host, <c>localhost</c>, a loopback address or this machine's
    /// name): only then are the domain's image paths files the lab can read, create and delete here.
    /// </summary>
    public bool IsOnThisHost => IsThisHost(Uri);

    /// <summary>See <see cref="IsOnThisHost"/>, for a URI not yet opened.</summary>
    public static bool IsThisHost(string uri)
    {
        if (!System.Uri.TryCreate(uri, UriKind.Absolute, out var u) || string.IsNullOrEmpty(u.Host))
        {
            return true;
        }
        var host = u.Host.Trim('[', ']');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip)))
        {
            return true;
        }
        var me = System.Net.Dns.GetHostName();
        return host.Equals(me, StringComparison.OrdinalIgnoreCase) || host.Equals(Environment.MachineName, StringComparison.OrdinalIgnoreCase);
    }

    private readonly SemaphoreSlim _hostGate = new(1, 1);
    private ILabHost? _host;
    private bool _ownsHost;

    /// <summary>
    /// The machine that holds this connection's image files, where the lab runs qemu-img and makes, reads, hashes and
    /// deletes files for its domains (<see cref="LabHosts.ForLibvirtUriAsync"/>): this machine for a local URI, the
    /// hypervisor over SSH for an SSH one. Opened on first use (or given by <see cref="UseHost"/>) and closed with the
    /// connection; a URI to another host without SSH gives the one-line reason here, when files are first needed.
    /// </summary>
    public async Task<ILabHost> GetHostAsync(CancellationToken cancellationToken = default)
    {
        if (_host is { } known)
        {
            return known;
        }
        await _hostGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_host is null)
            {
                var host = await LabHosts.ForLibvirtUriAsync(Uri, cancellationToken).ConfigureAwait(false);
                _ownsHost = true;
                _host = host;
            }
            return _host;
        }
        finally
        {
            _hostGate.Release();
        }
    }

    /// <summary>
    /// Uses <paramref name="host"/> (already connected to this URI's hypervisor, owned by the caller) for this
    /// connection's files instead of opening one, so a run and its connection share one SSH session.
    /// </summary>
    public void UseHost(ILabHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (_host is not null && !ReferenceEquals(_host, host))
        {
            throw new InvalidOperationException($"{Uri} already has its files on {_host.Name}");
        }
        _host = host;
    }

    /// <summary>Time source for waits (tests may substitute one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    internal ConnectHandle Handle => _handle;

    internal bool IsClosed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Every event seen, for reports (bounded to the last 2,000).</summary>
    public IReadOnlyList<LibvirtDomainEvent> RecentEvents
    {
        get
        {
            lock (_recent)
            {
                return _recent.ToArray();
            }
        }
    }

    private readonly Queue<LibvirtDomainEvent> _recent = new();

    /// <summary>
    /// <c>virConnectOpen(uri)</c>. Starts libvirt's event loop thread first (once per process). A libvirtd that is
    /// not running gives a <see cref="LibvirtConnectionException"/> naming the URI.
    /// </summary>
    public static Task<LibvirtConnection> OpenAsync(string uri = DefaultUri, CancellationToken cancellationToken = default) =>
        OpenAsync(uri, TimeProvider.System, cancellationToken);

    /// <summary>
    /// As <see cref="OpenAsync(string, CancellationToken)"/>, with the clock of every wait on this connection and on
    /// what it opens (domains, their agent, block jobs) and of its events' timestamps.
    /// </summary>
    public static Task<LibvirtConnection> OpenAsync(string uri, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        ArgumentNullException.ThrowIfNull(time);
        return Task.Run(() =>
        {
            LibvirtRuntime.EnsureStarted();
            // The lab's own parameters (where the files are reached over SSH) are not libvirt's.
            var libvirtUri = LabHosts.ForLibvirt(uri);
            var handle = LibvirtRuntime.CallHandle("virConnectOpen", uri, $"virConnectOpen(\"{libvirtUri}\")",
                () => LibvirtNative.virConnectOpen(libvirtUri),
                (code, dom, msg) => new LibvirtConnectionException(uri, code, dom, msg));
            return new LibvirtConnection(uri, handle) { Time = time };
        }, cancellationToken);
    }

    /// <summary>libvirt's library version on the connection (<c>virConnectGetLibVersion</c>), e.g. 9.0.0.</summary>
    public Version GetLibraryVersion()
    {
        ulong version = 0;
        LibvirtRuntime.Call("virConnectGetLibVersion", Uri, "virConnectGetLibVersion(conn)", () => LibvirtNative.virConnectGetLibVersion(_handle, out version));
        return new Version((int)(version / 1_000_000), (int)(version / 1000 % 1000), (int)(version % 1000));
    }

    /// <summary><c>virDomainLookupByName</c>. A wrong name gives a <see cref="LibvirtDomainNotFoundException"/>.</summary>
    public Task<LibvirtDomain> LookupDomainAsync(string name, CancellationToken cancellationToken = default) =>
        Task.Run(() => LookupDomain(name), cancellationToken);

    internal LibvirtDomain LookupDomain(string name) => new(this, LookupHandle(name), name);

    internal DomainHandle LookupHandle(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return LibvirtRuntime.CallHandle("virDomainLookupByName", $"domain '{name}'", $"virDomainLookupByName(conn, \"{name}\")",
            () => LibvirtNative.virDomainLookupByName(_handle, name),
            (code, dom, msg) => code == Vir.ErrNoDomain ? new LibvirtDomainNotFoundException(name, Uri, code, dom, msg) : new LibvirtException("virDomainLookupByName", $"domain '{name}'", code, dom, msg));
    }

    /// <summary><c>virConnectListAllDomains</c>: the names of every domain, defined or running.</summary>
    public Task<IReadOnlyList<string>> ListDomainNamesAsync(CancellationToken cancellationToken = default) =>
        Task.Run<IReadOnlyList<string>>(() =>
        {
            var array = nint.Zero;
            var count = LibvirtRuntime.Call("virConnectListAllDomains", Uri, "virConnectListAllDomains(conn, 0)", () => LibvirtNative.virConnectListAllDomains(_handle, out array, 0));
            var names = new List<string>(count);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var dom = Marshal.ReadIntPtr(array, i * nint.Size);
                    names.Add(DomainName(dom));
                    LibvirtNative.virDomainFree(dom);
                }
            }
            finally
            {
                if (array != nint.Zero)
                {
                    unsafe
                    {
                        System.Runtime.InteropServices.NativeMemory.Free((void*)array);
                    }
                }
            }
            return names;
        }, cancellationToken);

    /// <summary>True when a domain of that name exists (defined or running).</summary>
    public async Task<bool> DomainExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            using var d = await LookupDomainAsync(name, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (LibvirtDomainNotFoundException)
        {
            return false;
        }
    }

    /// <summary><c>virDomainDefineXML</c>: defines (or redefines) a persistent domain.</summary>
    public Task<LibvirtDomain> DefineDomainAsync(string xml, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            var name = DomainXml.NameOf(xml);
            var handle = LibvirtRuntime.CallHandle("virDomainDefineXML", $"domain '{name}'", $"virDomainDefineXML(conn, <domain {name}>)",
                () => LibvirtNative.virDomainDefineXML(_handle, xml));
            return new LibvirtDomain(this, handle, name);
        }, cancellationToken);

    /// <summary><c>virDomainCreateXML</c>: starts a transient domain (gone when it stops).</summary>
    public Task<LibvirtDomain> CreateTransientDomainAsync(string xml, CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            var name = DomainXml.NameOf(xml);
            var handle = LibvirtRuntime.CallHandle("virDomainCreateXML", $"domain '{name}'", $"virDomainCreateXML(conn, <domain {name}>, 0)",
                () => LibvirtNative.virDomainCreateXML(_handle, xml, 0));
            return new LibvirtDomain(this, handle, name);
        }, cancellationToken);

    /// <summary>Calls <paramref name="listener"/> for every event until the result is disposed (on the dispatcher, in order).</summary>
    public IDisposable Subscribe(Action<LibvirtDomainEvent> listener)
    {
        var id = Interlocked.Increment(ref _nextListener);
        _listeners[id] = listener;
        return new Unsubscriber(() => _listeners.TryRemove(id, out _));
    }

    /// <summary>
    /// Waits for the first event matching <paramref name="predicate"/>. Subscribe before causing it: the returned
    /// task is armed at once, the time limit starts when it is awaited through <paramref name="timeout"/>.
    /// </summary>
    public async Task<T> WaitForEventAsync<T>(Func<T, bool> predicate, TimeSpan timeout, string awaited, Func<Task>? cause = null, CancellationToken cancellationToken = default)
        where T : LibvirtDomainEvent
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sub = Subscribe(e =>
        {
            if (e is T t && predicate(t))
            {
                tcs.TrySetResult(t);
            }
        });
        if (cause is not null)
        {
            await cause().ConfigureAwait(false);
        }
        return await Poll.ForAsync(tcs.Task, awaited, timeout, time: Time, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private int RegisterEvent(ConnectHandle handle, int eventId, nint callback, nint opaque, string name) =>
        LibvirtRuntime.Call("virConnectDomainEventRegisterAny", Uri, $"virConnectDomainEventRegisterAny(conn, NULL, {name})",
            () => LibvirtNative.virConnectDomainEventRegisterAny(handle, 0, eventId, callback, opaque, 0));

    private static unsafe nint CloseCallback => (nint)(delegate* unmanaged<nint, int, nint, void>)&OnClose;

    [UnmanagedCallersOnly]
    private static void OnClose(nint conn, int reason, nint opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is LibvirtConnection c && c._handle.DangerousGetHandle() == conn)
            {
                Volatile.Write(ref c._closed, 1);
                c._events.Writer.TryWrite(new ConnectionClosedEventRecord(c.Time.GetUtcNow(), reason));
            }
        }
        catch (InvalidOperationException)
        {
            // The connection object is gone.
        }
    }

    private static unsafe nint LifecycleCallback => (nint)(delegate* unmanaged<nint, nint, int, int, nint, int>)&OnLifecycle;

    private static unsafe nint BlockJobCallback => (nint)(delegate* unmanaged<nint, nint, nint, int, int, nint, void>)&OnBlockJob;

    [UnmanagedCallersOnly]
    private static int OnLifecycle(nint conn, nint dom, int evt, int detail, nint opaque)
    {
        var name = DomainName(dom);
        Post(opaque, at => new DomainLifecycleEventRecord(name, at, (DomainLifecycleEvent)evt, detail));
        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnBlockJob(nint conn, nint dom, nint disk, int type, int status, nint opaque)
    {
        // Read out of libvirt's memory now: it is freed when the callback returns.
        var name = DomainName(dom);
        var target = Marshal.PtrToStringUTF8(disk) ?? "";
        Post(opaque, at => new BlockJobEventRecord(name, at, target, (LibvirtBlockJobType)type, (LibvirtBlockJobStatus)status));
    }

    private static string DomainName(nint dom) => Marshal.PtrToStringUTF8(LibvirtNative.virDomainGetName(dom)) ?? "";

    /// <summary>Posts the event <paramref name="make"/> gives for the time on the connection's clock.</summary>
    private static void Post(nint opaque, Func<DateTimeOffset, LibvirtDomainEvent> make)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is LibvirtConnection c)
            {
                c._events.Writer.TryWrite(make(c.Time.GetUtcNow()));
            }
        }
        catch (InvalidOperationException)
        {
            // The connection is gone.
        }
    }

    private async Task DispatchAsync()
    {
        await foreach (var e in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            lock (_recent)
            {
                _recent.Enqueue(e);
                while (_recent.Count > 2000)
                {
                    _recent.Dequeue();
                }
            }
            foreach (var l in _listeners.Values)
            {
                try
                {
                    l(e);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A listener's failure must not stop event delivery to the others.
                }
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        foreach (var id in _callbacks)
        {
            LibvirtNative.virConnectDomainEventDeregisterAny(_handle, id);
        }
        LibvirtNative.virConnectUnregisterCloseCallback(_handle, CloseCallback);
        _handle.Dispose();
        _reconnect.Dispose();
        _events.Writer.TryComplete();
        _self.Free();
    }

    public async ValueTask DisposeAsync()
    {
        await Task.Run(Dispose).ConfigureAwait(false);
        await _dispatcher.ConfigureAwait(false);
        if (_ownsHost && Interlocked.Exchange(ref _host, null) is { } host)
        {
            await host.DisposeAsync().ConfigureAwait(false);
        }
    }

    public override string ToString() => Uri;

    private sealed class Unsubscriber(Action action) : IDisposable
    {
        private Action? _action = action;

        public void Dispose() => Interlocked.Exchange(ref _action, null)?.Invoke();
    }
}
