using LabKernel.Jobs;

namespace LabKernel.Block;

/// <summary>One disk of a live external snapshot.</summary>
/// <param name="Disk">The disk (its start-up node name, e.g. <c>disk0</c>).</param>
/// <param name="OverlayFile">The new overlay; it must not exist.</param>
/// <param name="OverlayNodeName">Node name for the overlay; null: <c>{disk}-snapN</c>.</param>
public sealed record ExternalSnapshotRequest(string Disk, string OverlayFile, string? OverlayNodeName = null);

/// <summary>Which QMP transaction action takes an external snapshot.</summary>
public enum SnapshotMethod
{
    /// <summary><c>blockdev-snapshot-sync</c>: QEMU creates the overlay file itself (absolute backing name).</summary>
    SnapshotSync,

    /// <summary>
    /// <c>qemu-img create</c> the overlay, <c>blockdev-add</c> it with <c>backing: null</c>, then
    /// <c>blockdev-snapshot</c> in the transaction (libvirt's way since 4.x).
    /// </summary>
    AddThenSnapshot,
}

/// <summary>Mirror sync modes (<c>sync</c>).</summary>
public enum MirrorSync
{
    /// <summary>Copy the whole chain's content.</summary>
    Full,

    /// <summary>Copy only the active layer; the target shares the source's backing file.</summary>
    Top,

    /// <summary>Copy only new writes.</summary>
    None,
}

/// <summary>What a job does on an I/O error (<c>on-source-error</c>, <c>on-target-error</c>).</summary>
public enum BlockErrorPolicy
{
    Report,
    Ignore,
    Stop,
    Enospc,
}

/// <summary>Where a mirror writes.</summary>
public abstract record MirrorTarget
{
    private MirrorTarget() { }

    /// <summary>A new file QEMU creates (<c>drive-mirror mode=absolute-paths</c>); refused when it exists.</summary>
    public sealed record NewFile(string Path, string Format = "qcow2") : MirrorTarget;

    /// <summary>
    /// An existing image (<c>drive-mirror mode=existing</c>), e.g. an overlay the caller made on a copy of the
    /// source's backing file: the <c>-n</c> case, with <see cref="MirrorSync.Top"/> only the top is copied.
    /// </summary>
    public sealed record ExistingFile(string Path, string Format = "qcow2") : MirrorTarget;

    /// <summary>A node already added with <c>blockdev-add</c> (<c>blockdev-mirror</c>).</summary>
    public sealed record Node(string NodeName) : MirrorTarget;
}

/// <summary>A mirror's <c>copy-mode</c>.</summary>
public enum MirrorCopyMode
{
    /// <summary>The guest's writes go to the source; the job copies them to the target later (QEMU's default).</summary>
    Background,

    /// <summary>Each guest write also goes to the target before it completes: the guest waits for the target.</summary>
    WriteBlocking,
}

/// <summary>Mirror settings; nulls leave QEMU's defaults.</summary>
public sealed record MirrorOptions
{
    public MirrorSync Sync { get; init; } = MirrorSync.Full;

    /// <summary>Dirty-bitmap granularity in bytes (power of two, 512 B .. 64 MiB).</summary>
    public int? Granularity { get; init; }

    /// <summary>Bytes in flight (<c>buf-size</c>).</summary>
    public long? BufferSize { get; init; }

    /// <summary>Bytes per second; null or 0 for unlimited.</summary>
    public long? Speed { get; init; }

    public BlockErrorPolicy? OnSourceError { get; init; }
    public BlockErrorPolicy? OnTargetError { get; init; }

    /// <summary>How the guest's writes reach the target (<c>copy-mode</c>); null: QEMU's default, background.</summary>
    public MirrorCopyMode? CopyMode { get; init; }

    /// <summary>What to do on READY (complete = pivot to the target, cancel = keep the source).</summary>
    public ReadyAction OnReady { get; init; } = ReadyAction.Wait;

    public bool AutoFinalize { get; init; } = true;

    /// <summary>A job id; null: generated.</summary>
    public string? JobId { get; init; }
}

/// <summary>Commit settings.</summary>
public sealed record BlockCommitOptions
{
    public long? Speed { get; init; }

    /// <summary>Backing name to write into the layer above the committed range (<c>backing-file</c>); null: QEMU's choice.</summary>
    public string? BackingFile { get; init; }

    /// <summary>Active commit: what to do on READY (complete = pivot to the base, cancel = keep the overlay).</summary>
    public ReadyAction OnReady { get; init; } = ReadyAction.Wait;

    public bool AutoFinalize { get; init; } = true;

    public BlockErrorPolicy? OnError { get; init; }

    public string? JobId { get; init; }
}

/// <summary>Stream settings.</summary>
public sealed record BlockStreamOptions
{
    public long? Speed { get; init; }
    public bool AutoFinalize { get; init; } = true;
    public BlockErrorPolicy? OnError { get; init; }
    public string? JobId { get; init; }
}

/// <summary>
/// An error to inject with <c>blkdebug</c> between a qcow2 node and its file (as qemu-iotests do).
/// </summary>
/// <param name="Event">The blkdebug event that arms the rule, e.g. <c>write_aio</c> (qcow2 data writes), <c>read_aio</c>.</param>
/// <param name="Errno">The error number returned, 5 = EIO.</param>
/// <param name="Once">Fire once, then behave normally (so a resumed job can finish).</param>
public sealed record BlkdebugError(string Event = "write_aio", int Errno = 5, bool Once = true);

/// <summary>What <see cref="BlockLayer.HmpCommitAsync"/> sent and which backing files it wrote.</summary>
/// <param name="Command">The HMP command line: <c>commit DRIVE</c> or <c>commit all</c>.</param>
/// <param name="Written">The backing files the commit wrote (every one made by the lab).</param>
public sealed record HmpCommitResult(string Command, IReadOnlyList<string> Written);
