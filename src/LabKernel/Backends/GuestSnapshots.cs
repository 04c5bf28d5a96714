using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;

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

/// <summary>What each <see cref="SnapshotKind"/> keeps.</summary>
public static class SnapshotKinds
{
    /// <summary>The kind saves the guest's memory (internal, with memory, with memory live), so its revert must restore it.</summary>
    public static bool KeepsMemory(this SnapshotKind kind) => kind is SnapshotKind.Internal or SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive;

    /// <summary>The kind saves memory to a file of its own beside an external disk snapshot (with memory, with memory live).</summary>
    public static bool SavesMemoryFile(this SnapshotKind kind) => kind is SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive;
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

    /// <summary>
    /// How long the backend's own state showed the guest suspended (its CPUs stopped) during the call, sampled every
    /// 20 ms (libvirt's domain state); null where the backend is not asked (QEMU directly: the pings measure there).
    /// Unlike the pings, a loaded host or a busy daemon delays a reading but cannot make a suspension up.
    /// </summary>
    public TimeSpan? Suspended { get; init; }

    /// <summary>
    /// Whether <see cref="Suspended"/> can judge <see cref="BarelySuspendedAgainst"/>: both snapshots have it, and
    /// <paramref name="other"/>'s (the internal snapshot's) is at least <see cref="BarelyAPause"/>.
    /// </summary>
    public bool SuspensionComparableWith(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Suspended is not null && other.Suspended is { } theirs && theirs >= BarelyAPause;
    }

    /// <summary>
    /// The backend had the guest suspended at most 1/<see cref="ShorterFactor"/> as long as during
    /// <paramref name="other"/> (the internal snapshot): a disk-only snapshot that does not stop the guest's CPUs reads
    /// 0. Judged where <see cref="SuspensionComparableWith"/> holds.
    /// </summary>
    public bool BarelySuspendedAgainst(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Suspended is { } mine && other.Suspended is { } theirs && theirs > TimeSpan.Zero && mine * ShorterFactor <= theirs;
    }

    /// <summary>The share of the call's duration the guest must not answer for <see cref="PausedForMostOfIt"/>.</summary>
    public const double MostOfTheCall = 0.5;

    /// <summary>How many times longer than the other kind's a pause must be for <see cref="PausedLongerThan"/>.</summary>
    public const int LongerFactor = 2;

    /// <summary>
    /// How long the other kind's pause must be for <see cref="BarelyPausedAgainst"/> to tell kinds apart
    /// (<see cref="PauseComparableWith"/>): on a loaded host the pings' own gaps reach a few hundred ms (a disk-only
    /// snapshot measured 210 ms against an internal one's 177 ms with three guests on two cores), and this is more
    /// than twice that. Notebook 06 makes the guest hold memory (<see cref="MemoryInUse"/>) so that its internal
    /// snapshot has this much to save (512 MiB: 740-890 ms on an idle host here).
    /// </summary>
    public static readonly TimeSpan BarelyAPause = TimeSpan.FromMilliseconds(500);

    /// <summary>Or a pause at least this many times shorter than the other kind's (<see cref="BarelyPausedAgainst"/>).</summary>
    public const int ShorterFactor = 3;

    /// <summary>
    /// The guest did not answer for at least <see cref="MostOfTheCall"/> of the call's duration
    /// (<c>LongestUnanswered &gt;= Duration * 0.5</c>): the guest was paused for most of the snapshot (notebook 06's
    /// internal snapshot and snapshot with memory). False for a snapshot the guest ran through.
    /// </summary>
    public bool PausedForMostOfIt => LongestUnanswered >= Duration * MostOfTheCall;

    /// <summary>
    /// The guest went silent at least <see cref="LongerFactor"/> times as long as during <paramref name="other"/>
    /// (a disk-only snapshot, measured the same way): a snapshot that saves memory with the guest paused. A memory
    /// snapshot that ran through the save (as <c>--live</c> does until its final part) pauses about as briefly as the
    /// disk-only one and comes out false. Judged against the other kind, not the call's duration: on a hypervisor
    /// over SSH the call's own round trips are a large share of a small guest's memory snapshot (CI saw 231 ms silent
    /// in a 535 ms call, against 78 ms for the disk-only kind).
    /// </summary>
    public bool PausedLongerThan(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return LongestUnanswered >= other.LongestUnanswered * LongerFactor && LongestUnanswered > TimeSpan.Zero;
    }

    /// <summary>
    /// The snapshot grew the active image itself, made no new file, and the image lists it with VM state
    /// (<see cref="StateBytes"/>): what an internal snapshot does (memory and disk state inside the qcow2). False for an
    /// external snapshot (a new overlay), one that wrote nothing, or a disk-only internal snapshot (metadata alone grows
    /// the image a little, with no memory in it).
    /// </summary>
    public bool GrewTheActiveImageOnly => GrowthBytes > 0 && NewFiles.Count == 0 && StateBytes > 0;

    /// <summary>
    /// For an internal snapshot, the VM state saved inside the active image under its name (<c>vm-state-size</c> in
    /// <c>qemu-img info</c>'s snapshot list, read after the snapshot); 0 when the image holds no such snapshot or a
    /// disk-only one, and for the other kinds.
    /// </summary>
    public long StateBytes { get; init; }

    /// <summary>
    /// The guest barely paused, against <paramref name="other"/> (the internal snapshot, measured the same way): its
    /// longest silence was at most 1/<see cref="ShorterFactor"/> of the other's. Judged only where
    /// <see cref="PauseComparableWith"/> holds; false for a pause as long as the other's however short both are.
    /// </summary>
    public bool BarelyPausedAgainst(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other.LongestUnanswered > TimeSpan.Zero && LongestUnanswered * ShorterFactor <= other.LongestUnanswered;
    }

    /// <summary>
    /// Whether the pings can tell this kind's pause from <paramref name="other"/>'s: the other paused the guest at least
    /// <see cref="BarelyAPause"/>. Below that (an idle small guest under TCG: 177-717 ms for the internal kind here) both are
    /// within the pings' own gaps on a loaded host, and notebook 06 shows the numbers as a note instead of a verdict.
    /// </summary>
    public bool PauseComparableWith(SnapshotTaken other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other.LongestUnanswered >= BarelyAPause;
    }
}

/// <summary>
/// Each kind of snapshot the way each backend makes it: on QEMU through QMP, on libvirt through libvirt's own
/// snapshot API (what <c>virsh snapshot-create-as</c> calls). A notebook asks <see cref="Supports"/>, never the
/// guest's type.
/// </summary>
public static class GuestSnapshots
{
    /// <summary>How long a sampler may take for its first reading, and for one after the snapshot.</summary>
    private static readonly TimeSpan ReadingLimit = TimeSpan.FromMinutes(2);

    /// <summary>Whether this guest can take <paramref name="kind"/>: the live memory snapshot is libvirt's.</summary>
    public static bool Supports(ILabGuest guest, SnapshotKind kind) => guest.Snapshots.Supports(kind);

    /// <summary>
    /// Takes a snapshot of the guest's disk <paramref name="disk"/> of the given kind, named <paramref name="name"/>;
    /// new files go where <paramref name="newFile"/> (role, file name) says, which registers them as the lab's.
    /// While it runs, the guest agent is pinged every 20 ms (from an answer before the call until one after it):
    /// <see cref="SnapshotTaken.LongestUnanswered"/> is the longest stretch of the call without an answer, what a client
    /// of the guest would see as a pause. Silence outside the call (a loaded host's own gaps) is not the snapshot's.
    /// </summary>
    public static async Task<SnapshotTaken> TakeAsync(ILabGuest guest, string disk, SnapshotKind kind, string name, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(newFile);
        if (!Supports(guest, kind))
        {
            throw new LabUsageException($"the {guest.Backend.Name()} backend has no {kind} snapshot");
        }
        var host = guest.Host;
        var before = (await guest.Block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).Active.Filename;
        var sizeBefore = await host.FileSizeAsync(before, cancellationToken).ConfigureAwait(false);
        var overlay = kind is SnapshotKind.Internal ? null : newFile($"{name}-overlay", $"{name}.qcow2");
        var memory = kind.SavesMemoryFile() ? newFile($"{name}-memory", $"{name}.mem") : null;
        // Two samplers through the call: the guest agent's answers to pings (what a client of the guest sees) and,
        // where the backend is asked, its own state of the guest. The call's start and end are marked on each one's clock.
        using var suspensions = guest.Snapshots.ReadSuspended is { } readSuspended
            ? new Sampler<bool>(readSuspended, "the guest's run state")
            : null;
        if (suspensions is not null)
        {
            await suspensions.ReadyAsync(ReadingLimit, cancellationToken).ConfigureAwait(false);
        }
        using var pings = new Sampler<bool>(async ct =>
        {
            await guest.Agent.ExecuteAsync("guest-ping", null, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false);
            return true;
        }, "the guest agent's answer to a guest-ping");
        await pings.ReadyAsync(ReadingLimit, cancellationToken).ConfigureAwait(false);
        var (started, startedThere) = (pings.Now, suspensions?.Now);
        var how = await guest.Snapshots.TakeAsync(disk, kind, name, overlay, memory, cancellationToken).ConfigureAwait(false);
        var (ended, endedThere) = (pings.Now, suspensions?.Now);
        var answers = await pings.StopAsync(ReadingLimit).ConfigureAwait(false);
        var unanswered = PauseEvidence.LongestSilenceWithin([.. answers.Select(a => a.At)], started, ended);
        TimeSpan? suspended = suspensions is null
            ? null
            : PauseEvidence.SuspendedWithin(await suspensions.StopAsync(ReadingLimit).ConfigureAwait(false), startedThere!.Value, endedThere!.Value);
        var files = new[] { overlay, memory }.OfType<string>().ToArray();
        long growth;
        long state = 0;
        if (kind is SnapshotKind.Internal)
        {
            growth = await host.FileSizeAsync(before, cancellationToken).ConfigureAwait(false) - sizeBefore;
            var listed = await Images.QemuImg.On(host).ListSnapshotsAsync(before, cancellationToken: cancellationToken).ConfigureAwait(false);
            state = listed.LastOrDefault(s => s.Name == name)?.VmStateSize ?? 0;
        }
        else
        {
            growth = 0;
            foreach (var f in files)
            {
                growth += await host.FileExistsAsync(f, cancellationToken).ConfigureAwait(false) ? await host.FileSizeAsync(f, cancellationToken).ConfigureAwait(false) : 0;
            }
        }
        return new SnapshotTaken(kind, name, ended - started, unanswered, files, overlay is null ? null : before, growth, how) { MemoryFile = memory, StateBytes = state, Suspended = suspended };
    }

    /// <summary>
    /// Reverts the guest to <paramref name="snapshot"/> the way its backend can, and returns how (<see cref="RevertDone"/>). Internal: QEMU
    /// <c>snapshot-load</c> or libvirt's revert. External disk-only: the lab's revert (a fresh overlay on the frozen
    /// layer, the guest booted on it; the layer is never written). External with memory: libvirt's own revert is
    /// asked, and its refusal (libvirt before 9.7 cannot revert external snapshots) comes back as a
    /// <see cref="LibvirtException"/>; on QEMU the saved memory is loaded into a new QEMU over a fresh overlay on the
    /// frozen layer (<see cref="ILabGuest.RestoreAsync"/>).
    /// </summary>
    public static async Task<RevertDone> RevertAsync(ILabGuest guest, string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (await guest.Snapshots.RevertAsync(disk, snapshot, newFile, cancellationToken).ConfigureAwait(false) is { } how)
        {
            return how;
        }
        // The lab's external revert: the frozen layer is never written; a new overlay goes over it.
        var overlay = newFile($"{snapshot.Name}-revert", $"{snapshot.Name}-revert.qcow2");
        await QemuImg.On(guest.Host).CreateAsync(overlay, "qcow2", options: new CreateOptions { BackingFile = snapshot.FrozenLayer!, BackingFormat = "qcow2" }, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (snapshot.Kind.SavesMemoryFile() && snapshot.MemoryFile is { } memory && guest.Capabilities.HasFlag(LabCapabilities.RestoreMemory))
        {
            // A real memory revert: the saved state loaded into a new QEMU over the disk as it was frozen with it.
            await guest.RestoreAsync(new Dictionary<string, string> { [disk] = overlay }, memory, cancellationToken).ConfigureAwait(false);
            return new RevertDone(RevertMethod.MemoryRestored, "the saved memory loaded into a new QEMU (-incoming, then cont) on a new overlay over the frozen layer");
        }
        await guest.BootAgainAsync(new Dictionary<string, string> { [disk] = overlay }, cancellationToken).ConfigureAwait(false);
        return new RevertDone(RevertMethod.ColdBootOnFrozenLayer, snapshot.Kind.SavesMemoryFile()
            ? "a cold boot on a new overlay over the frozen layer (the memory file is not loaded into this guest)"
            : "the lab's external revert: a new overlay on the frozen layer, the guest booted on it (a cold boot: memory is not part of a disk-only snapshot)");
    }
}
