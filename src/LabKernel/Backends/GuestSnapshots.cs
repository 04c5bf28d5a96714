using System.Diagnostics;
using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;
using LabKernel.Snapshots;

namespace LabKernel.Backends;

/// <summary>The kinds of snapshot the source documents compare (004).</summary>
public enum SnapshotKind
{
    /// <summary>Memory and disks inside the active qcow2 image (QEMU <c>snapshot-save</c>; libvirt's default snapshot).</summary>
    Internal,

    /// <summary>External, disk only: the disk moves onto a new overlay; crash-consistent.</summary>
    DiskOnly,

    /// <summary>External, disk only, with the guest's filesystems frozen through the agent for the instant (fsfreeze).</summary>
    DiskOnlyFrozen,

    /// <summary>External with memory, a full system checkpoint: memory to a file, the disk onto a new overlay, guest paused meanwhile.</summary>
    WithMemory,

    /// <summary>As <see cref="WithMemory"/>, the guest running while memory is saved (libvirt's <c>--live</c>).</summary>
    WithMemoryLive,
}

/// <summary>
/// A snapshot taken by <see cref="GuestSnapshots.TakeAsync"/>: how long the call took, the longest time the guest
/// did not answer meanwhile, the files it made and, for external kinds, the layer that froze.
/// </summary>
public sealed record SnapshotTaken(
    SnapshotKind Kind,
    string Name,
    TimeSpan Duration,
    TimeSpan LongestUnanswered,
    IReadOnlyList<string> NewFiles,
    string? FrozenLayer,
    long GrowthBytes,
    string How)
{
    /// <summary>The memory file of a snapshot with memory (a migration stream on QEMU, libvirt's save image on libvirt); else null.</summary>
    public string? MemoryFile { get; init; }

    /// <summary>The share of the call's duration the guest must not answer for <see cref="PausedForMostOfIt"/>.</summary>
    public const double MostOfTheCall = 0.5;

    /// <summary>A pause shorter than this is "barely" one (<see cref="BarelyPausedAgainst"/>).</summary>
    public static readonly TimeSpan BarelyAPause = TimeSpan.FromSeconds(1);

    /// <summary>Or a pause at least this many times shorter than the other kind's (<see cref="BarelyPausedAgainst"/>).</summary>
    public const int ShorterFactor = 4;

    /// <summary>
    /// The guest did not answer for at least <see cref="MostOfTheCall"/> of the call's duration
    /// (<c>LongestUnanswered &gt;= Duration * 0.5</c>): the guest was paused for most of the snapshot (notebook 06's
    /// internal snapshot and snapshot with memory). False for a snapshot the guest ran through.
    /// </summary>
    public bool PausedForMostOfIt => LongestUnanswered >= Duration * MostOfTheCall;

    /// <summary>
    /// The snapshot grew the active image itself and made no new file: what an internal snapshot does (memory and disk
    /// state inside the qcow2). False for an external snapshot (a new overlay) or one that wrote nothing.
    /// </summary>
    public bool GrewTheActiveImageOnly => GrowthBytes > 0 && NewFiles.Count == 0;

    /// <summary>
    /// The guest barely paused: its longest silence was under <see cref="BarelyAPause"/>, or under
    /// 1/<see cref="ShorterFactor"/> of <paramref name="other"/>'s (the internal snapshot, measured the same way, so a busy
    /// host that delays every answer does not decide it). False for a snapshot that paused the guest as long as the other.
    /// </summary>
    public bool BarelyPausedAgainst(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return LongestUnanswered < BarelyAPause || LongestUnanswered * ShorterFactor < other.LongestUnanswered;
    }
}

/// <summary>
/// Each kind of snapshot the way each backend makes it: on QEMU through QMP, on libvirt through libvirt's own
/// snapshot API (what <c>virsh snapshot-create-as</c> calls). A notebook asks <see cref="Supports"/>, never the
/// guest's type.
/// </summary>
public static class GuestSnapshots
{
    /// <summary>Whether this guest can take <paramref name="kind"/>: the live memory snapshot is libvirt's.</summary>
    public static bool Supports(ILabGuest guest, SnapshotKind kind) =>
        kind != SnapshotKind.WithMemoryLive || guest is LibvirtLabGuest;

    /// <summary>
    /// Takes a snapshot of the guest's disk <paramref name="disk"/> of the given kind, named <paramref name="name"/>;
    /// new files go where <paramref name="newFile"/> (role, file name) says, which registers them as the lab's.
    /// While it runs, the guest agent is pinged every 20 ms: <see cref="SnapshotTaken.LongestUnanswered"/> is the
    /// longest stretch without an answer, what a client of the guest would see as a pause.
    /// </summary>
    public static async Task<SnapshotTaken> TakeAsync(ILabGuest guest, string disk, SnapshotKind kind, string name, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(newFile);
        if (!Supports(guest, kind))
        {
            throw new LabUsageException($"the {guest.Backend} backend has no {kind} snapshot");
        }
        var before = (await guest.Block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).Active.Filename;
        var sizeBefore = new FileInfo(before).Length;
        var overlay = kind is SnapshotKind.Internal ? null : newFile($"{name}-overlay", $"{name}.qcow2");
        var memory = kind is SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive ? newFile($"{name}-memory", $"{name}.mem") : null;
        string how;
        using var probe = PauseProbe.Start(guest.Agent);
        var clock = Stopwatch.StartNew();
        switch (guest)
        {
            case LibvirtLabGuest lv:
                how = await TakeLibvirtAsync(lv, disk, kind, name, overlay, memory, cancellationToken).ConfigureAwait(false);
                break;
            default:
                how = await TakeQemuAsync(guest, disk, kind, name, overlay, memory, cancellationToken).ConfigureAwait(false);
                break;
        }
        var duration = clock.Elapsed;
        var unanswered = await probe.StopAsync().ConfigureAwait(false);
        var files = new[] { overlay, memory }.OfType<string>().ToArray();
        var growth = kind is SnapshotKind.Internal
            ? new FileInfo(before).Length - sizeBefore
            : files.Sum(f => File.Exists(f) ? new FileInfo(f).Length : 0);
        return new SnapshotTaken(kind, name, duration, unanswered, files, overlay is null ? null : before, growth, how) { MemoryFile = memory };
    }

    private static async Task<string> TakeLibvirtAsync(LibvirtLabGuest guest, string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken)
    {
        var snapshots = guest.Domain.Snapshots;
        switch (kind)
        {
            case SnapshotKind.Internal:
                await snapshots.CreateInternalAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "virDomainSnapshotCreateXML, flags 0 (virsh snapshot-create-as NAME)";
            case SnapshotKind.DiskOnly:
                await snapshots.CreateDiskOnlyAsync(name, [new DiskSnapshotSpec(disk, overlay!)], cancellationToken: cancellationToken).ConfigureAwait(false);
                return "DISK_ONLY|ATOMIC (virsh snapshot-create-as NAME --disk-only --atomic)";
            case SnapshotKind.DiskOnlyFrozen:
                await snapshots.CreateDiskOnlyAsync(name, [new DiskSnapshotSpec(disk, overlay!)], quiesce: true, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "DISK_ONLY|ATOMIC|QUIESCE (--disk-only --atomic --quiesce: fsfreeze through the agent)";
            default:
                var live = kind == SnapshotKind.WithMemoryLive;
                await snapshots.CreateMemoryAsync(name, memory!, [new DiskSnapshotSpec(disk, overlay!)], live, cancellationToken).ConfigureAwait(false);
                return live ? "ATOMIC|LIVE with <memory snapshot='external'> (--memspec ... --diskspec ... --live)" : "ATOMIC with <memory snapshot='external'> (--memspec ... --diskspec ...)";
        }
    }

    private static async Task<string> TakeQemuAsync(ILabGuest guest, string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken)
    {
        switch (kind)
        {
            case SnapshotKind.Internal:
                var block = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
                await block.SaveInternalSnapshotAsync(name, [disk], disk, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "QMP snapshot-save job (vmstate and disk inside the active qcow2, as HMP savevm)";
            case SnapshotKind.DiskOnly:
                await guest.Block.SnapshotAsync(disk, overlay!, cancellationToken).ConfigureAwait(false);
                return "QMP transaction of blockdev-snapshot-sync";
            case SnapshotKind.DiskOnlyFrozen:
                await guest.Agent.FreezeAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await guest.Block.SnapshotAsync(disk, overlay!, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    await guest.Agent.ThawAsync(CancellationToken.None).ConfigureAwait(false);
                }
                return "guest-fsfreeze-freeze, QMP blockdev-snapshot-sync, guest-fsfreeze-thaw";
            default:
                var monitor = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
                await monitor.CheckpointAsync(memory!, new Dictionary<string, string> { [disk] = overlay! }, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "QMP stop, blockdev-snapshot-sync, migrate to a file, cont";
        }
    }

    /// <summary>
    /// Reverts the guest to <paramref name="snapshot"/> the way its backend can, and returns how. Internal: QEMU
    /// <c>snapshot-load</c> or libvirt's revert. External disk-only: the lab's revert (a fresh overlay on the frozen
    /// layer, the guest booted on it; the layer is never written). External with memory: libvirt's own revert is
    /// asked, and its refusal (libvirt before 9.7 cannot revert external snapshots) comes back as a
    /// <see cref="LibvirtException"/>; on QEMU the saved memory is loaded into a new QEMU over a fresh overlay on the
    /// frozen layer (<see cref="ILabGuest.RestoreAsync"/>).
    /// </summary>
    public static async Task<string> RevertAsync(ILabGuest guest, string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(snapshot);
        switch (snapshot.Kind, guest)
        {
            case (SnapshotKind.Internal, LibvirtLabGuest lv):
                await lv.Domain.Snapshots.RevertAsync(snapshot.Name, running: true, cancellationToken).ConfigureAwait(false);
                guest.Agent.GuestRewound();
                // libvirt reconnects to the agent's channel after the revert; until then commands fail "not connected".
                await lv.Domain.WaitForAgentAsync(TimeSpan.FromMinutes(2), cancellationToken).ConfigureAwait(false);
                return "virDomainRevertToSnapshot (virsh snapshot-revert)";
            case (SnapshotKind.Internal, _):
                var block = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
                await block.LoadInternalSnapshotAsync(snapshot.Name, [disk], disk, cancellationToken: cancellationToken).ConfigureAwait(false);
                guest.Agent.GuestRewound();
                return "QMP snapshot-load job (as HMP loadvm)";
            case (SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive, LibvirtLabGuest lv):
                await lv.Domain.Snapshots.RevertAsync(snapshot.Name, running: true, askLibvirtForExternal: true, cancellationToken).ConfigureAwait(false);
                guest.Agent.GuestRewound();
                return "virDomainRevertToSnapshot (virsh snapshot-revert) of the external snapshot";
            default:
                var overlay = newFile($"{snapshot.Name}-revert", $"{snapshot.Name}-revert.qcow2");
                if (guest is LibvirtLabGuest user && !guest.Capabilities.HasFlag(LabCapabilities.BootAgain))
                {
                    await user.Domain.Snapshots.RevertExternalAsync(disk, snapshot.FrozenLayer!, overlay, cancellationToken: cancellationToken).ConfigureAwait(false);
                    return "the lab's external revert on your domain: destroyed, a new overlay on the frozen layer, started on it";
                }
                await QemuImg.CreateAsync(overlay, "qcow2", options: new CreateOptions { BackingFile = snapshot.FrozenLayer!, BackingFormat = "qcow2" }, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (snapshot is { Kind: SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive, MemoryFile: { } memory } && guest.Capabilities.HasFlag(LabCapabilities.RestoreMemory))
                {
                    // A real memory revert: the saved state loaded into a new QEMU over the disk as it was frozen with it.
                    await guest.RestoreAsync(new Dictionary<string, string> { [disk] = overlay }, memory, cancellationToken).ConfigureAwait(false);
                    return "the saved memory loaded into a new QEMU (-incoming, then cont) on a new overlay over the frozen layer";
                }
                await guest.BootAgainAsync(new Dictionary<string, string> { [disk] = overlay }, cancellationToken).ConfigureAwait(false);
                return snapshot.Kind is SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive
                    ? "a cold boot on a new overlay over the frozen layer (the memory file is not loaded into this guest)"
                    : "the lab's external revert: a new overlay on the frozen layer, the guest booted on it (a cold boot: memory is not part of a disk-only snapshot)";
        }
    }
}

/// <summary>Pings the guest agent every 20 ms and keeps the longest stretch without an answer.</summary>
internal sealed class PauseProbe : IDisposable
{
    private readonly CancellationTokenSource _abort = new();
    private readonly Task<TimeSpan> _loop;
    private volatile bool _stopping;

    private PauseProbe(IGuestAgent agent) => _loop = Task.Run(() => RunAsync(agent, _abort.Token));

    public static PauseProbe Start(IGuestAgent agent) => new(agent);

    private async Task<TimeSpan> RunAsync(IGuestAgent agent, CancellationToken abort)
    {
        var clock = Stopwatch.StartNew();
        var last = clock.Elapsed;
        var longest = TimeSpan.Zero;
        // A sampling clock, not a wait: the probe measures how long the guest goes without answering.
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        while (true)
        {
            var stopping = _stopping;
            try
            {
                await agent.ExecuteAsync("guest-ping", null, TimeSpan.FromMinutes(5), abort).ConfigureAwait(false);
            }
            catch (LabException)
            {
                // No answer: libvirt refuses agent commands while the domain is paused ("domain is not running").
                await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
                continue;
            }
            var now = clock.Elapsed;
            longest = Max(longest, now - last);
            last = now;
            if (stopping)
            {
                // This answer came after the operation ended, so it closes the last gap.
                return longest;
            }
            await tick.WaitForNextTickAsync(abort).ConfigureAwait(false);
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Waits for one answer after this call (the guest runs again) and returns the longest gap seen.</summary>
    public async Task<TimeSpan> StopAsync()
    {
        _stopping = true;
        try
        {
            return await _loop.WaitAsync(TimeSpan.FromMinutes(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new LabTimeoutException("the guest agent to answer a guest-ping after the snapshot", TimeSpan.FromMinutes(2));
        }
    }

    public void Dispose()
    {
        _abort.Cancel();
        _abort.Dispose();
    }
}
