namespace LabKernel.Backends;

/// <summary>
/// How one backend takes and reverts each <see cref="SnapshotKind"/>: QMP on QEMU, libvirt's snapshot API on
/// libvirt. <see cref="GuestSnapshots"/> measures around it (pauses, growth, files) the same way for both, and runs
/// the lab's own external revert where the backend has none of its own.
/// </summary>
public interface IGuestSnapshotMaker
{
    /// <summary>Whether the backend can take <paramref name="kind"/> (the live memory snapshot is libvirt's).</summary>
    bool Supports(SnapshotKind kind);

    /// <summary>
    /// Takes the snapshot: <paramref name="overlay"/> (external kinds) and <paramref name="memory"/> (kinds with
    /// memory) are new files the lab registered. Returns how, in the terms of the tool the documents use.
    /// </summary>
    Task<string> TakeAsync(string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads whether the backend has the guest's CPUs stopped (libvirt's domain state: paused or not), which
    /// <see cref="GuestSnapshots.TakeAsync"/> samples through each call for <see cref="SnapshotTaken.Suspended"/>;
    /// null where the backend is not asked (the pings are then the only measure). A read returns the state as it is,
    /// so a slow answer delays a reading but never makes one up.
    /// </summary>
    Func<CancellationToken, Task<bool>>? ReadSuspended => null;

    /// <summary>
    /// Reverts by the backend's own means, returning how; null where it has none, so the lab's external revert
    /// (a new overlay over the frozen layer, booted or restored) runs. A backend that says it cannot revert this kind
    /// throws <see cref="RevertRefusedException"/>; any other exception is a failure of the revert.
    /// </summary>
    Task<RevertDone?> RevertAsync(string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default);
}

/// <summary>The means by which a revert brought the guest back.</summary>
public enum RevertMethod
{
    /// <summary>QEMU's <c>snapshot-load</c> of an internal snapshot in the running guest (HMP <c>loadvm</c>).</summary>
    SnapshotLoad,

    /// <summary>libvirt's own revert (<c>virDomainRevertToSnapshot</c>, <c>virsh snapshot-revert</c>).</summary>
    LibvirtRevert,

    /// <summary>The saved memory loaded into a new QEMU (<c>-incoming</c>, then <c>cont</c>) on a new overlay over the frozen layer.</summary>
    MemoryRestored,

    /// <summary>The lab's external revert: a new overlay on the frozen layer, the guest booted on it (memory is not kept).</summary>
    ColdBootOnFrozenLayer,
}

/// <summary>How a revert was done: its <see cref="RevertMethod"/> and the same in the terms of the tools the documents use.</summary>
public sealed record RevertDone(RevertMethod Method, string Description)
{
    public override string ToString() => Description;
}

/// <summary>
/// The backend said it cannot revert to this snapshot (libvirt before 9.7 for an external snapshot: "revert to external
/// snapshot not supported yet"), as opposed to a revert that failed. Notebook 06's claim (4) counts only these.
/// </summary>
public sealed class RevertRefusedException(string message, Exception inner) : LabException(message, inner);
