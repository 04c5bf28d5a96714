using LabKernel.Host;
using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Images;
using LabKernel.Libvirt;

namespace LabKernel.Guests;

/// <summary>
/// A running guest an experiment works on, whichever backend runs it: the embedded guest on QEMU directly, the
/// embedded guest as a libvirt domain, or a user's own libvirt domain. The experiment sees the same three things
/// on all of them: the guest agent, the block operations (<see cref="ILabBlock"/>) and the root disk's name.
/// </summary>
public interface ILabGuest : IAsyncDisposable
{
    /// <summary><c>qemu</c> or <c>libvirt</c>.</summary>
    string Backend { get; }

    /// <summary>The guest's name (the QEMU <c>-name</c> or the libvirt domain).</summary>
    string Name { get; }

    /// <summary>The root disk as the block operations name it: <c>disk0</c> (QEMU) or the target, <c>vda</c> (libvirt).</summary>
    string Disk { get; }

    /// <summary>
    /// The image below the lab's first overlay: the cached guest image, or the user's own disk image. The lab only
    /// reads it: every write of the experiment goes into overlays it created.
    /// </summary>
    string BaseImage { get; }

    /// <summary>One line for a notebook: what runs, where, and how long it took to answer.</summary>
    string Description { get; }

    /// <summary>From start to the guest agent's first answer (null when the guest was already running).</summary>
    TimeSpan? BootToAgent { get; }

    IGuestAgent Agent { get; }

    ILabBlock Block { get; }

    /// <summary>The QEMU process's pid on this host, when known (for looking at the files it holds open).</summary>
    int? QemuProcessId { get; }

    /// <summary>
    /// For a user's domain, after dispose: how it was handed back and the evidence that the lab did not write its
    /// image (SHA-256 at take-over and at hand-back). Null for guests the lab made, and before dispose.
    /// </summary>
    DomainHandBack? HandBack { get; }

    /// <summary>Powers the guest off cleanly (through the agent), so its layers are closed and can be read offline.</summary>
    Task StopAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Reboots the guest from inside (its own reboot, through the agent) and waits until the agent answers from the
    /// new boot (a different <c>/proc/sys/kernel/random/boot_id</c>). Returns how long that took.
    /// </summary>
    Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// The QMP view of the guest's QEMU as a <see cref="BlockLayer"/>: the machine's own monitor, or for libvirt the
    /// monitor passthrough the documents use (<c>virsh qemu-monitor-command</c>), with events.
    /// </summary>
    Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default);
}

/// <summary>Waiting for a guest to come back from a reboot, the same on every backend.</summary>
internal static class GuestReboot
{
    private const string BootIdPath = "/proc/sys/kernel/random/boot_id";

    public static async Task<string> BootIdAsync(IGuestAgent agent, CancellationToken cancellationToken) =>
        System.Text.Encoding.ASCII.GetString(await agent.ReadFileAsync(BootIdPath, cancellationToken).ConfigureAwait(false)).Trim();

    /// <summary>Asks for the reboot, then waits for an agent answer from a new boot within <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan> RunAsync(IGuestAgent agent, Func<Task> request, Func<TimeSpan, Task> waitForAgent, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var before = await BootIdAsync(agent, cancellationToken).ConfigureAwait(false);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await request().ConfigureAwait(false);
        var delay = TimeSpan.FromMilliseconds(100);
        var last = "the old boot still answers";
        while (true)
        {
            var left = timeout - sw.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new LabTimeoutException("the guest to come back from its reboot (an agent answer with a new boot_id)", timeout, last);
            }
            try
            {
                await waitForAgent(left).ConfigureAwait(false);
                if (await BootIdAsync(agent, cancellationToken).ConfigureAwait(false) != before)
                {
                    return sw.Elapsed;
                }
            }
            catch (LabException e) when (e is not GuestNotRunningException && (e is not LabTimeoutException || sw.Elapsed < timeout))
            {
                last = e.Message;
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }
}

/// <summary>How a user's domain was handed back (see <see cref="ILabGuest.HandBack"/>).</summary>
/// <param name="Domain">The domain's name.</param>
/// <param name="Disk">The one disk the lab worked on (its other disks it never touches).</param>
/// <param name="Image">The disk's own active image, which the guest writes when the lab is not there.</param>
/// <param name="Sha256AtTakeOver">Its SHA-256 once the lab's overlay was on top (the image read-only from then on).</param>
/// <param name="Sha256AtHandBack">Its SHA-256 after the guest was stopped, before the domain was started on it again.</param>
/// <param name="Summary">One line: what was put back.</param>
public sealed record DomainHandBack(string Domain, string Disk, string Image, string Sha256AtTakeOver, string Sha256AtHandBack, string Summary)
{
    /// <summary>True when the image's bytes are the same at hand-back as at take-over.</summary>
    public bool ImageUnchanged => Sha256AtTakeOver == Sha256AtHandBack;

    /// <summary>The evidence in one line, for a findings table.</summary>
    public string Evidence =>
        $"{System.IO.Path.GetFileName(Image)} ({Disk}) SHA-256 {Sha256AtTakeOver[..16]}… at take-over, {Sha256AtHandBack[..16]}… at hand-back";
}

/// <summary>What <see cref="LabGuests.StartAsync"/> starts.</summary>
public sealed record LabGuestOptions
{
    /// <summary><c>qemu</c> (the embedded guest on QEMU directly) or <c>libvirt</c>.</summary>
    public string Backend { get; init; } = "qemu";

    /// <summary>With <c>libvirt</c>: a domain of the user's to work on; empty for the embedded guest as a lab-made domain.</summary>
    public string? Domain { get; init; }

    /// <summary>With <c>libvirt</c>: the connection URI.</summary>
    public string LibvirtUri { get; init; } = LibvirtConnection.DefaultUri;

    /// <summary>With a user's domain: the disk to work on (its target, e.g. <c>vda</c>); empty for the first file disk.</summary>
    public string? DomainDisk { get; init; }

    /// <summary>A short name for the guest (the embedded domain's name gets a unique suffix).</summary>
    public string Name { get; init; } = "labguest";

    /// <summary>The folder for the guest's runtime files (console log, sockets).</summary>
    public required string WorkFolder { get; init; }

    /// <summary>
    /// The overlays the lab makes for the starting chain, lowest first, none existing yet: <c>[overlay1]</c> gives
    /// <c>base &lt;- overlay1</c>. For the embedded guest they are created with qemu-img before boot; on a user's
    /// running domain each is a live disk-only snapshot (the first quiesced when the agent can freeze).
    /// </summary>
    public required IReadOnlyList<string> Overlays { get; init; }

    public int MemoryMiB { get; init; } = 1024;

    /// <summary>Time limit for the guest agent to answer after start.</summary>
    public TimeSpan AgentTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Time limit for a clean power-off before the guest is stopped hard.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>Starts an <see cref="ILabGuest"/> from notebook parameters (<c>Backend</c>, <c>Domain</c>).</summary>
public static class LabGuests
{
    /// <summary>
    /// Checks the backend choice (a one-line <see cref="LabUsageException"/> for a wrong one), makes the starting
    /// chain and starts (or, for a user's domain, takes over) the guest, waiting for its agent.
    /// </summary>
    public static async Task<ILabGuest> StartAsync(LabGuestOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (backend, domain) = CheckChoice(options.Backend, options.Domain);
        if (options.Overlays.Count == 0)
        {
            throw new LabUsageException("the starting chain needs at least one overlay for the lab to write into");
        }
        foreach (var o in options.Overlays)
        {
            if (File.Exists(o))
            {
                throw new OverlayExistsException(Path.GetFullPath(o));
            }
        }
        if (backend == "libvirt")
        {
            LibvirtConnection.RequireThisHost(options.LibvirtUri, "run an experiment on a domain there");
        }
        Directory.CreateDirectory(options.WorkFolder);
        return backend == "qemu"
            ? await QemuLabGuest.StartAsync(options, cancellationToken).ConfigureAwait(false)
            : domain.Length == 0
                ? await LibvirtLabGuest.StartEmbeddedAsync(options, cancellationToken).ConfigureAwait(false)
                : await LibvirtLabGuest.TakeOverAsync(options, domain, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Validates notebook parameters <c>Backend</c> and <c>Domain</c> before anything is made: a one-line
    /// <see cref="LabUsageException"/> for an unknown backend or a domain with <c>Backend=qemu</c>.
    /// Returns them normalised.
    /// </summary>
    public static (string Backend, string Domain) CheckChoice(string? backend, string? domain)
    {
        var b = (backend ?? "").Trim().ToLowerInvariant();
        var d = domain?.Trim() ?? "";
        if (b is not ("qemu" or "libvirt"))
        {
            throw new LabUsageException($"Backend must be qemu or libvirt, not '{backend}'");
        }
        if (b == "qemu" && d.Length > 0)
        {
            throw new LabUsageException($"Domain='{d}' names a libvirt domain: run with Backend=libvirt (Backend=qemu always boots the embedded guest)");
        }
        return (b, d);
    }

    /// <summary>Creates <paramref name="overlays"/> (lowest first) as a qcow2 chain on <paramref name="baseImage"/>; returns the top.</summary>
    internal static async Task<string> CreateChainAsync(string baseImage, IReadOnlyList<string> overlays, CancellationToken cancellationToken)
    {
        var below = baseImage;
        var belowFormat = (await QemuImg.InfoAsync(baseImage, cancellationToken: cancellationToken).ConfigureAwait(false)).Format;
        foreach (var o in overlays)
        {
            var path = Path.GetFullPath(o);
            await QemuImg.CreateAsync(path, "qcow2", options: new CreateOptions { BackingFile = below, BackingFormat = belowFormat }, cancellationToken: cancellationToken).ConfigureAwait(false);
            below = path;
            belowFormat = "qcow2";
        }
        return below;
    }
}

/// <summary>The embedded guest on QEMU directly (<see cref="EmbeddedGuest"/>): root disk <c>disk0</c>, QMP block layer.</summary>
public sealed class QemuLabGuest : ILabGuest
{
    private readonly EmbeddedGuest _guest;
    private bool _stopped;

    private QemuLabGuest(EmbeddedGuest guest) => _guest = guest;

    internal static async Task<QemuLabGuest> StartAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var image = await GuestImageBuilder.EnsureAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var top = await LabGuests.CreateChainAsync(image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
        var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions
        {
            RootDisk = top,
            WorkFolder = options.WorkFolder,
            Name = options.Name,
            MemoryMiB = options.MemoryMiB,
            AgentTimeout = options.AgentTimeout,
        }, cancellationToken).ConfigureAwait(false);
        return new QemuLabGuest(guest);
    }

    /// <summary>The QEMU process, for what only the QEMU backend offers (QMP, HMP, NBD exports).</summary>
    public Machines.QemuMachine Machine => _guest.Machine;

    public string Backend => "qemu";
    public string Name => Machine.Options.Name;
    public string Disk => "disk0";
    public string BaseImage => _guest.Image.BaseImage;
    public TimeSpan? BootToAgent => Machine.BootToAgent;
    public IGuestAgent Agent => Machine.Agent;
    public ILabBlock Block => Machine.Block();

    public string Description =>
        $"the embedded guest on QEMU directly ({Machine.Accelerator.Name}: {Machine.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start";

    public int? QemuProcessId => Machine.ProcessId;

    public DomainHandBack? HandBack => null;

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopped = true;
        await _guest.DisposeAsync().ConfigureAwait(false);
    }

    public Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        GuestReboot.RunAsync(Machine.Agent, () => Machine.Agent.ShutdownAsync("reboot", cancellationToken),
            left => Machine.WaitForAgentAsync(left, cancellationToken), timeout, cancellationToken);

    public Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default) => Task.FromResult(Machine.Block());

    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            await StopAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// A guest run by libvirt: the embedded guest as a domain the lab defines (and removes), or a user's domain that
/// the lab takes over for one experiment and hands back as it found it.
/// </summary>
/// <remarks>
/// With a user's domain the lab never writes the user's image: it first moves the running guest onto its own
/// overlay (a live disk-only snapshot, quiesced when the guest agent can freeze), and on dispose it powers the
/// guest off, points the persistent definition back at the user's image, drops the snapshot metadata it made and
/// starts the domain again if it was running. What the guest wrote during the experiment stays in the lab's
/// overlays, which the experiment keeps or deletes.
/// </remarks>
public sealed class LibvirtLabGuest : ILabGuest
{
    private readonly LibvirtConnection _connection;
    private readonly LibvirtGuest? _embedded;
    private readonly UserDomainState? _user;
    private readonly TimeSpan _shutdownTimeout;
    private readonly TimeSpan _agentTimeout;
    private bool _disposed;

    private LibvirtLabGuest(LibvirtConnection connection, LibvirtDomain domain, string disk, string baseImage, LibvirtGuest? embedded, UserDomainState? user, TimeSpan? bootToAgent, LabGuestOptions options)
    {
        _connection = connection;
        Domain = domain;
        Disk = disk;
        BaseImage = baseImage;
        _embedded = embedded;
        _user = user;
        BootToAgent = bootToAgent;
        _shutdownTimeout = options.ShutdownTimeout;
        _agentTimeout = options.AgentTimeout;
        if (user is not null)
        {
            // If the process ends mid-experiment there is no time for a clean hand-back: at least point the
            // definition at the user's image again and drop the lab's snapshot records, so the next start is theirs.
            _exitHook = Host.ProcessExitHooks.Register($"libvirt domain {domain.Name}", () => PointBackAsync(user).GetAwaiter().GetResult());
        }
    }

    private readonly IDisposable? _exitHook;

    private async Task<int> PointBackAsync(UserDomainState user)
    {
        var persistent = (await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false)).First(d => d.Target == Disk);
        if (!BackingChain.SameFile(persistent.Source, user.PersistentSource) || persistent.Format != user.PersistentFormat)
        {
            await Domain.SetPersistentDiskSourceAsync(Disk, user.PersistentSource, user.PersistentFormat.Length > 0 ? user.PersistentFormat : null).ConfigureAwait(false);
        }
        var dropped = (await Domain.Snapshots.DropMetadataExceptAsync(user.SnapshotNames).ConfigureAwait(false)).Count;
        if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
        {
            Host.LabWarnings.Raise($"domain '{Name}' still runs on the lab's overlay; its definition names {user.PersistentSource} again, so a restart returns it to your image");
        }
        return dropped;
    }

    private sealed record UserDomainState(bool WasRunning, string PersistentSource, string PersistentFormat, IReadOnlyList<string> SnapshotNames, bool Quiesced, string Sha256AtTakeOver);

    /// <summary>The libvirt domain, for what only libvirt offers (snapshot metadata, blockcopy, monitor passthrough).</summary>
    public LibvirtDomain Domain { get; }

    /// <summary>True when this is a user's domain the lab took over (not one it defined).</summary>
    public bool IsUserDomain => _user is not null;

    public DomainHandBack? HandBack { get; private set; }

    public string Backend => "libvirt";
    public string Name => Domain.Name;
    public string Disk { get; }
    public string BaseImage { get; }
    public TimeSpan? BootToAgent { get; }
    public IGuestAgent Agent => Domain.Agent;
    public ILabBlock Block => Domain.Block;

    public string Description => _user is null
        ? $"the embedded guest as libvirt domain '{Name}' on {_connection.Uri} ({_embedded!.Accelerator.Name}: {_embedded.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start"
        : $"your libvirt domain '{Name}' on {_connection.Uri}, disk {Disk}: the lab writes only into its own overlays above {BaseImage}"
          + (_user.WasRunning ? (_user.Quiesced ? " (first overlay taken live with the guest's filesystems frozen)" : " (first overlay taken live without quiescing: the guest agent could not freeze)") : " (overlays put on before the lab started it)")
          + (BootToAgent is { } b ? $"; started by the lab, agent up after {b.TotalSeconds:0.0} s" : "");

    internal static async Task<LibvirtLabGuest> StartEmbeddedAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, cancellationToken).ConfigureAwait(false);
        try
        {
            var image = await GuestImageBuilder.EnsureAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var top = await LabGuests.CreateChainAsync(image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
            var guest = await LibvirtGuest.CreateAsync(connection, new LibvirtGuestOptions
            {
                Name = $"lab-{options.Name}-{Guid.NewGuid().ToString("N")[..6]}",
                WorkFolder = options.WorkFolder,
                RootDisk = top,
                MemoryMiB = options.MemoryMiB,
                AgentTimeout = options.AgentTimeout,
            }, cancellationToken).ConfigureAwait(false);
            return new LibvirtLabGuest(connection, guest.Domain, "vda", image.BaseImage, guest, null, guest.BootToAgent, options);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal static async Task<LibvirtLabGuest> TakeOverAsync(LabGuestOptions options, string name, CancellationToken cancellationToken)
    {
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, cancellationToken).ConfigureAwait(false);
        LibvirtDomain? domain = null;
        try
        {
            domain = await connection.LookupDomainAsync(name, cancellationToken).ConfigureAwait(false);
            if (!await domain.IsPersistentAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new LabUsageException($"domain '{name}' is transient: the lab needs a persistent (defined) domain, so it can put it back on its own disk when the experiment ends");
            }
            var persistentDisks = await domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false);
            var wanted = string.IsNullOrWhiteSpace(options.DomainDisk) ? null : options.DomainDisk.Trim();
            var disk = (wanted is null ? persistentDisks.FirstOrDefault(d => d.Source.Length > 0) : persistentDisks.FirstOrDefault(d => d.Target == wanted))
                ?? throw new LabUsageException(wanted is null
                    ? $"domain '{name}' has no file-backed disk to work on"
                    : $"domain '{name}' has no disk {wanted} (it has {string.Join(", ", persistentDisks.Select(d => d.Target))})");
            var snapshots = (await domain.Snapshots.ListAsync(cancellationToken).ConfigureAwait(false)).Select(s => s.Name).ToArray();
            var state = await domain.GetStateAsync(cancellationToken).ConfigureAwait(false);
            var wasRunning = state == DomainState.Running;
            TimeSpan? boot = null;
            var chainMadeOffline = false;
            string? takeOverHash = null;
            if (!wasRunning)
            {
                if (state != DomainState.ShutOff)
                {
                    throw new LabUsageException($"domain '{name}' is {state}: resume it or shut it off first");
                }
                // Shut off: the lab's overlays go on before the first boot, so not even the boot writes the user's image.
                takeOverHash = await FileHash.Sha256Async(disk.Source, cancellationToken).ConfigureAwait(false);
                var top = await LabGuests.CreateChainAsync(disk.Source, options.Overlays, cancellationToken).ConfigureAwait(false);
                await domain.SetPersistentDiskSourceAsync(disk.Target, top, "qcow2", cancellationToken).ConfigureAwait(false);
                chainMadeOffline = true;
                await domain.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            try
            {
                var waited = await domain.WaitForAgentAsync(options.AgentTimeout, cancellationToken).ConfigureAwait(false);
                boot = wasRunning ? null : waited;
            }
            catch (LabTimeoutException e)
            {
                throw new LabException($"domain '{name}': {e.Message}; the notebooks drive the guest through qemu-guest-agent, so the guest needs it running and the domain an org.qemu.guest_agent.0 channel");
            }
            var quiesced = false;
            for (var i = 0; i < (chainMadeOffline ? 0 : options.Overlays.Count); i++)
            {
                var overlay = Path.GetFullPath(options.Overlays[i]);
                var snap = $"lab-setup-{Path.GetFileNameWithoutExtension(overlay)}-{Guid.NewGuid().ToString("N")[..6]}";
                if (i == 0)
                {
                    try
                    {
                        await domain.Snapshots.CreateDiskOnlyAsync(snap, [new DiskSnapshotSpec(disk.Target, overlay)], metadata: false, quiesce: true, cancellationToken: cancellationToken).ConfigureAwait(false);
                        quiesced = true;
                        continue;
                    }
                    catch (LibvirtException) when (!File.Exists(overlay))
                    {
                        // The agent cannot freeze (no fsfreeze, or a filesystem that refuses it): take it unquiesced.
                    }
                }
                await domain.Snapshots.CreateDiskOnlyAsync(snap, [new DiskSnapshotSpec(disk.Target, overlay)], metadata: false, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            // From here on the user's image is a read-only backing file: its bytes now are the evidence for the hand-back.
            takeOverHash ??= await FileHash.Sha256Async(disk.Source, cancellationToken).ConfigureAwait(false);
            var found = new UserDomainState(wasRunning, disk.Source, disk.Format, snapshots, quiesced || chainMadeOffline, takeOverHash);
            return new LibvirtLabGuest(connection, domain, disk.Target, disk.Source, null, found, boot, options);
        }
        catch
        {
            domain?.Dispose();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public int? QemuProcessId => Domain.QemuProcessId;

    public Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        GuestReboot.RunAsync(Domain.Agent, () => Domain.RequestRebootAsync(cancellationToken),
            left => Domain.WaitForAgentAsync(left, cancellationToken), timeout, cancellationToken);

    /// <summary>QMP through libvirt's monitor passthrough (opened once; closed with the guest).</summary>
    public async Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default)
    {
        _qmp ??= await LibvirtQmp.ConnectAsync(Domain, cancellationToken).ConfigureAwait(false);
        return await LibvirtQmp.BlockLayerAsync(Domain, _qmp, cancellationToken).ConfigureAwait(false);
    }

    private Qmp.QmpClient? _qmp;

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await Domain.ShutdownAsync(_shutdownTimeout, ShutdownMode.GuestAgent, cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            // A guest that does not power off within the limit is stopped hard; its overlays stay valid images.
            await Domain.DestroyAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            if (_qmp is not null)
            {
                await _qmp.DisposeAsync().ConfigureAwait(false);
            }
            if (_embedded is not null)
            {
                await _embedded.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await HandBackAsync().ConfigureAwait(false);
                Domain.Dispose();
            }
        }
        finally
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Puts a user's domain back on its own disk, as it was found (see the class remarks).</summary>
    private async Task HandBackAsync()
    {
        var user = _user!;
        var entry = Journal.LabJournal.Current.Begin("libvirt", $"hand {Name} back: {Disk} on {Path.GetFileName(user.PersistentSource)}, {(user.WasRunning ? "running" : "shut off")}");
        try
        {
            if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
            {
                await StopAsync().ConfigureAwait(false);
            }
            var dropped = await PointBackAsync(user).ConfigureAwait(false);
            _exitHook?.Dispose();
            var handBackHash = await FileHash.Sha256Async(user.PersistentSource).ConfigureAwait(false);
            var now = (await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false)).First(d => d.Target == Disk);
            if (!BackingChain.SameFile(now.Source, user.PersistentSource))
            {
                throw new LabException($"could not put domain '{Name}' back on {user.PersistentSource}: its definition names {now.Source}");
            }
            if (user.WasRunning)
            {
                await Domain.StartAsync().ConfigureAwait(false);
                await Domain.WaitForAgentAsync(_agentTimeout).ConfigureAwait(false);
            }
            var summary = $"domain '{Name}' {Disk} back on {user.PersistentSource}, {(user.WasRunning ? "running again" : "shut off as found")}; dropped {dropped} snapshot record(s) the lab made; "
                + (user.Sha256AtTakeOver == handBackHash ? "the image's SHA-256 is unchanged since the take-over" : "THE IMAGE'S SHA-256 CHANGED since the take-over");
            HandBack = new DomainHandBack(Name, Disk, user.PersistentSource, user.Sha256AtTakeOver, handBackHash, summary);
            entry.Complete(summary);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }
}
