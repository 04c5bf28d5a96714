using System.Globalization;

namespace LabKernel.Block;

/// <summary>
/// A dirty bitmap on a block node, as <c>query-named-block-nodes</c> reports it in <c>dirty-bitmaps</c>.
/// </summary>
/// <param name="Node">The node that holds it (a bitmap belongs to one node, not to the disk).</param>
/// <param name="Name">Its name (QEMU's own anonymous bitmaps, e.g. a backup job's, have an empty name).</param>
/// <param name="Count">Dirty bytes: the clusters written since the bitmap was added or last cleared, times the granularity.</param>
/// <param name="Granularity">Bytes one bit covers (the node's cluster size unless given).</param>
/// <param name="Recording">Whether writes are being recorded (false while disabled).</param>
/// <param name="Persistent">Stored in the qcow2 image when QEMU closes it (survives a restart).</param>
/// <param name="Busy">In use by a job (a backup reading it); it cannot be removed or changed meanwhile.</param>
/// <param name="Inconsistent">A persistent bitmap QEMU found not cleanly saved; it must not be trusted.</param>
public sealed record DirtyBitmap(string Node, string Name, long Count, long Granularity, bool Recording, bool Persistent, bool Busy, bool Inconsistent)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Name}@{Node}: {Count} dirty bytes (granularity {Granularity}{(Persistent ? ", persistent" : "")}{(Recording ? "" : ", disabled")}{(Busy ? ", busy" : "")})");
}

/// <summary>Full backup or an increment on top of an earlier backup.</summary>
public enum BackupKind
{
    /// <summary><c>blockdev-backup sync=full</c>: the whole disk's content.</summary>
    Full,

    /// <summary><c>blockdev-backup sync=bitmap</c>: only the clusters the bitmap marks dirty, into an overlay of the previous backup.</summary>
    Incremental,
}

/// <summary>What becomes of the bitmap after an incremental backup (QMP <c>bitmap-mode</c>).</summary>
public enum BitmapMode
{
    /// <summary>Cleared when the job succeeds (then it tracks writes since this backup); kept on failure. <c>sync=incremental</c> is this.</summary>
    OnSuccess,

    /// <summary>Cleared of what was copied even when the job fails.</summary>
    Always,

    /// <summary>Left as it was: the next increment copies the same clusters again, plus new ones (a differential backup).</summary>
    Never,
}

/// <summary>How a backup runs.</summary>
public sealed record BackupOptions
{
    /// <summary>
    /// The dirty bitmap. For a full backup: the bitmap to start (added in the same <c>transaction</c>, or cleared
    /// when the disk already has it), so it records exactly the writes after the backup point; null for a backup
    /// with no increments to follow. For an incremental backup: the bitmap to copy (required).
    /// </summary>
    public string? Bitmap { get; init; }

    /// <summary>A new bitmap is persistent (<c>persistent: true</c>, stored in the qcow2 image).</summary>
    public bool PersistentBitmap { get; init; }

    /// <summary>A new bitmap's granularity in bytes (a power of two, 512 B to 2 GiB); null: the node's cluster size.</summary>
    public long? Granularity { get; init; }

    /// <summary>What becomes of the bitmap after an incremental backup.</summary>
    public BitmapMode BitmapMode { get; init; } = BitmapMode.OnSuccess;

    /// <summary>
    /// Take an external snapshot onto this new file in the same <c>transaction</c>: the layer the snapshot
    /// freezes is exactly the backup point (compare them with <c>qemu-img compare</c>), and the bitmap moves onto
    /// the new overlay (a new empty bitmap of the same name), so later increments still find it on the active layer.
    /// </summary>
    public string? SnapshotOverlay { get; init; }

    /// <summary>Job speed limit in bytes per second; null: unlimited.</summary>
    public long? Speed { get; init; }

    /// <summary>Time limit for the job; null: <see cref="BlockLayer.JobTimeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>A backup that concluded.</summary>
/// <param name="Kind">Full or incremental.</param>
/// <param name="Disk">The disk backed up.</param>
/// <param name="Target">The new qcow2 file the job wrote.</param>
/// <param name="Chain">The backups that restore this point, oldest (the full backup) first, ending with <paramref name="Target"/>; each is the backing file of the next.</param>
/// <param name="Bitmap">The bitmap the backup started (full) or copied (incremental); null for a plain full backup.</param>
/// <param name="BytesCopied">The job's final offset: bytes it read from the disk and wrote to the target.</param>
/// <param name="Length">The job's final length (the disk's size for a full backup; the dirty bytes for an increment).</param>
/// <param name="Duration">From the start command to the job's conclusion.</param>
/// <param name="SnapshotOverlay">The overlay the same transaction snapshotted the disk onto, or null.</param>
/// <param name="FrozenLayer">With a snapshot: the layer it froze, whose chain holds exactly the backup point.</param>
public sealed record BackupResult(
    BackupKind Kind,
    string Disk,
    string Target,
    IReadOnlyList<string> Chain,
    string? Bitmap,
    long BytesCopied,
    long Length,
    TimeSpan Duration,
    string? SnapshotOverlay = null,
    string? FrozenLayer = null)
{
    /// <summary>The backup this one is an increment on, or null for a full backup.</summary>
    public string? Previous => Chain.Count > 1 ? Chain[^2] : null;

    /// <summary>
    /// How small an increment must be against the full backup: it copies under 1/<see cref="FullDataParts"/> of the
    /// data the full backup holds (notebook 05's "under a quarter").
    /// </summary>
    public const long FullDataParts = 4;

    /// <summary>
    /// Notebook 05's verdict on an increment, from what its target holds (<paramref name="targetData"/>: data at depth 0
    /// of <c>qemu-img map</c>, the increment image's own clusters): at least the guest's new data
    /// (<paramref name="writtenBytes"/>) and under 1/<see cref="FullDataParts"/> of <paramref name="fullData"/> (the data
    /// the full backup holds; integer division). False for an increment that dropped the new data, or one that holds as
    /// much as a full backup would. (The job's own offset is not evidence here: an incremental job's length is the
    /// bitmap's count, so it copies "what was marked" by construction.)
    /// </summary>
    public static bool HoldsTheNewDataOnly(long targetData, long writtenBytes, long fullData) =>
        targetData >= writtenBytes && targetData < fullData / FullDataParts;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Kind.ToString().ToLowerInvariant()} backup of {Disk} -> {Path.GetFileName(Target)}: {BytesCopied} bytes in {Duration.TotalMilliseconds:0} ms (chain {string.Join(" <- ", Chain.Select(Path.GetFileName))})");
}

/// <summary>
/// A bitmap the disk does not have where the operation needs it (an incremental backup: on the active layer): never
/// added, removed, or left on a lower layer by an external snapshot taken outside
/// <see cref="BackupOptions.SnapshotOverlay"/>. Nothing was sent to QEMU and no file was made.
/// </summary>
public sealed class MissingBitmapException : BlockOperationException
{
    public MissingBitmapException(string disk, string node, string bitmap, string detail)
        : base($"no dirty bitmap '{bitmap}' on {disk}: {detail}")
    {
        Disk = disk;
        Node = node;
        Bitmap = bitmap;
    }

    public string Disk { get; }

    /// <summary>The disk's active node when the bitmap was looked for.</summary>
    public string Node { get; }
    public string Bitmap { get; }
}
