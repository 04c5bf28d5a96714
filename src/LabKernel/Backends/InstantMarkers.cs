using LabKernel.GuestAgent;

namespace LabKernel.Backends;

/// <summary>
/// Three readings of a guest's instant: a marker file on its disk (written and synced), a marker in memory only (a
/// tmpfs the lab mounts, gone after any boot) and the kernel's boot id (new on every boot). What a revert brings back
/// is told apart by them: a disk revert brings the disk marker back, a memory revert the memory marker and boot id too,
/// and a cold boot can never bring the memory marker back.
/// </summary>
/// <param name="Disk">The disk marker's content, or empty when the file is missing.</param>
/// <param name="Memory">The memory marker's content, or empty when the file (or its tmpfs) is missing.</param>
/// <param name="BootId">/proc/sys/kernel/random/boot_id.</param>
public sealed record InstantMarkers(string Disk, string Memory, string BootId)
{
    /// <summary>The marker file on the guest's root filesystem.</summary>
    public const string DiskPath = "/root/lab-instant-marker";

    /// <summary>The tmpfs the lab mounts for the memory marker, and the marker in it.</summary>
    public const string MemoryFolder = "/mnt/lab-instant";

    /// <summary>The memory marker, in <see cref="MemoryFolder"/>.</summary>
    public const string MemoryPath = MemoryFolder + "/marker";

    /// <summary>Writes <paramref name="value"/> to both markers (mounting the tmpfs when it is not mounted) and syncs the disk.</summary>
    public static Task WriteAsync(IGuestShell guest, string value, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var v = Processes.ShellQuote.Quote(value);
        return guest.ShellAsync(
            $"mkdir -p {MemoryFolder} && (mountpoint -q {MemoryFolder} || mount -t tmpfs -o size=1m lab-instant {MemoryFolder}) && echo {v} > {MemoryPath} && echo {v} > {DiskPath} && sync",
            new GuestExecOptions { Check = true }, cancellationToken);
    }

    /// <summary>Reads the three markers; a missing marker reads as empty.</summary>
    public static async Task<InstantMarkers> ReadAsync(IGuestShell guest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var r = await guest.ShellAsync(
            $"cat {DiskPath} 2>/dev/null; echo '|'; (mountpoint -q {MemoryFolder} && cat {MemoryPath}) 2>/dev/null; echo '|'; cat /proc/sys/kernel/random/boot_id",
            new GuestExecOptions { Check = true }, cancellationToken).ConfigureAwait(false);
        var parts = r.StandardOutput.Split('|');
        return parts.Length == 3
            ? new InstantMarkers(parts[0].Trim(), parts[1].Trim(), parts[2].Trim())
            : throw new LabException($"could not read the instant markers: '{r.StandardOutput.Trim()}'");
    }

    public override string ToString() =>
        $"disk marker '{Disk}', memory marker '{(Memory.Length == 0 ? "(gone)" : Memory)}', boot id {(BootId.Length >= 8 ? BootId[..8] : BootId)}";
}

/// <summary>
/// What a revert brought back, measured: the markers at the snapshot against the markers after the revert. A kind that
/// keeps memory (internal, with memory) must bring back all three; a disk-only kind the disk marker.
/// </summary>
/// <param name="Kind">The snapshot's kind.</param>
/// <param name="AtSnapshot">The markers just before the snapshot.</param>
/// <param name="AfterRevert">The markers after the revert (the markers were overwritten after the snapshot).</param>
public sealed record RevertEvidence(SnapshotKind Kind, InstantMarkers AtSnapshot, InstantMarkers AfterRevert)
{
    /// <summary>The kind saves the guest's memory, so its revert must restore it.</summary>
    public bool KeepsMemory => Kind.KeepsMemory();

    /// <summary>The disk marker is the one written before the snapshot.</summary>
    public bool DiskBack => AfterRevert.Disk == AtSnapshot.Disk;

    /// <summary>The memory marker and the boot id are those of the snapshot's instant (impossible after a boot).</summary>
    public bool MemoryBack => AfterRevert.Memory.Length > 0 && AfterRevert.Memory == AtSnapshot.Memory && AfterRevert.BootId == AtSnapshot.BootId;

    /// <summary>The revert returned what the kind keeps: disk and memory, or the disk alone.</summary>
    public bool ReturnedToInstant => DiskBack && (!KeepsMemory || MemoryBack);

    /// <summary>The claim a findings table checks.</summary>
    public string Claim => KeepsMemory
        ? $"Reverting the {Kind} snapshot returns the guest's memory and disk to the snapshot's instant"
        : $"Reverting the {Kind} snapshot returns the disk to the snapshot's instant (memory is not part of it: the guest boots anew)";

    /// <summary>The evidence in one line.</summary>
    public string Observed => $"at the snapshot: {AtSnapshot}; after the revert: {AfterRevert}"
        + (AfterRevert.BootId == AtSnapshot.BootId ? " (same boot)" : " (a new boot)");
}

/// <summary>
/// One revert to a snapshot's instant, as notebook 06 judges it: how the backend reverted, or why it refused
/// (libvirt before 9.9 refuses external snapshots: <see cref="Refusal"/> is its error), and the markers read after it.
/// </summary>
/// <param name="Evidence">The markers at the snapshot and after the revert (after a refusal: the running guest's).</param>
/// <param name="How">How the backend reverted (<see cref="GuestSnapshots.RevertAsync"/>); null when it refused.</param>
/// <param name="Refusal">The backend's refusal, one line; null when it reverted.</param>
public sealed record RevertOutcome(RevertEvidence Evidence, RevertDone? How, string? Refusal)
{
    public SnapshotKind Kind => Evidence.Kind;

    /// <summary>The backend refused to revert.</summary>
    public bool Refused => Refusal is not null;

    /// <summary>The backend reverted and the guest came back with what the kind keeps (<see cref="RevertEvidence.ReturnedToInstant"/>).</summary>
    public bool ReturnedToInstant => !Refused && Evidence.ReturnedToInstant;

    /// <summary>
    /// The document's claim (4), "libvirt cannot revert to an external snapshot": at least one revert to an external
    /// snapshot with memory was tried, libvirt refused every one, and refused nothing else. False when libvirt reverted
    /// any of them (as 9.9 and later do), when none was tried, or when it refused another kind.
    /// </summary>
    public static bool OnlyExternalRevertsRefused(IReadOnlyCollection<RevertOutcome> reverts)
    {
        ArgumentNullException.ThrowIfNull(reverts);
        return reverts.Any(r => r.Kind.SavesMemoryFile()) && reverts.All(r => r.Refused == r.Kind.SavesMemoryFile());
    }

    /// <summary>The outcome in one line: the refusal, or how and the evidence.</summary>
    public string Observed => Refused ? $"refused: {Refusal}" : $"{How}: {Evidence.Observed}";
}
