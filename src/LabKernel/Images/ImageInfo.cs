using System.Text.Json;

namespace LabKernel.Images;

/// <summary>How a backing file name is written in an image header.</summary>
public enum BackingNameKind
{
    /// <summary>The image has no backing file.</summary>
    None,

    /// <summary>Relative: QEMU resolves it against the directory of the image that names it.</summary>
    Relative,

    /// <summary>Absolute POSIX path (starts with <c>/</c>).</summary>
    Absolute,

    /// <summary>A protocol or pseudo-protocol name (<c>nbd:</c>, <c>json:{...}</c>, <c>file:...</c>).</summary>
    Protocol,
}

/// <summary>An internal snapshot of a qcow2 image, with the columns of <c>qemu-img snapshot -l</c>.</summary>
/// <param name="Id">Numeric ID QEMU assigned (<c>ID</c> column).</param>
/// <param name="Name">Tag (<c>TAG</c> column).</param>
/// <param name="VmStateSize">Bytes of saved VM state (<c>VM SIZE</c>); 0 for a disk-only snapshot.</param>
/// <param name="Date">When it was taken (<c>DATE</c>).</param>
/// <param name="VmClock">Guest clock at the snapshot (<c>VM CLOCK</c>).</param>
/// <param name="Icount">Instruction count with record/replay (<c>ICOUNT</c>); null when absent.</param>
public sealed record InternalSnapshot(string Id, string Name, long VmStateSize, DateTimeOffset Date, TimeSpan VmClock, long? Icount);

/// <summary>
/// One image as <c>qemu-img info --output=json</c> describes it; also one layer of a <see cref="BackingChain"/>.
/// </summary>
/// <param name="Filename">The file name as qemu-img opened it (for backing layers: the resolved full backing name).</param>
/// <param name="Format">Format driver, e.g. <c>qcow2</c> or <c>raw</c>.</param>
/// <param name="VirtualSize">Size the guest sees, in bytes.</param>
/// <param name="ActualSize">Bytes allocated on the host file system; null when qemu-img cannot tell.</param>
/// <param name="BackingFilename">Backing file name exactly as written in the header; null without a backing file.</param>
/// <param name="FullBackingFilename">Backing file name as QEMU resolves it (relative names against this image's directory).</param>
/// <param name="BackingFormat">Backing format recorded in the header (<c>backing-filename-format</c>).</param>
/// <param name="ClusterSize">Cluster size in bytes (qcow2); null for formats without clusters.</param>
/// <param name="DirtyFlag">True when the image was not closed cleanly (qcow2 lazy refcounts).</param>
/// <param name="Corrupt">qcow2's corrupt bit (<c>format-specific.data.corrupt</c>); null when not reported.</param>
/// <param name="Snapshots">Internal snapshots, oldest first.</param>
public sealed record ImageInfo(
    string Filename,
    string Format,
    long VirtualSize,
    long? ActualSize,
    string? BackingFilename,
    string? FullBackingFilename,
    string? BackingFormat,
    int? ClusterSize,
    bool DirtyFlag,
    bool? Corrupt,
    IReadOnlyList<InternalSnapshot> Snapshots)
{
    /// <summary>Just the file name, without folders.</summary>
    public string Name => DisplayName(Filename);

    public bool HasBacking => !string.IsNullOrEmpty(BackingFilename);

    /// <summary>Whether <see cref="BackingFilename"/> is relative, absolute, a protocol name, or absent.</summary>
    public BackingNameKind BackingNameKind => ClassifyBackingName(BackingFilename);

    /// <summary>Classifies a backing file name the way QEMU would resolve it.</summary>
    public static BackingNameKind ClassifyBackingName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return BackingNameKind.None;
        }
        if (name.StartsWith('/'))
        {
            return BackingNameKind.Absolute;
        }
        // QEMU treats "proto:..." as a protocol when the colon comes before any slash.
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        if (colon > 0 && (slash < 0 || colon < slash))
        {
            return BackingNameKind.Protocol;
        }
        return BackingNameKind.Relative;
    }

    /// <summary>Parses the JSON of <c>qemu-img info --output=json FILE</c> (one object).</summary>
    public static ImageInfo Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return FromJson(doc.RootElement);
    }

    internal static ImageInfo FromJson(JsonElement e)
    {
        var snapshots = new List<InternalSnapshot>();
        if (e.TryGetProperty("snapshots", out var snaps) && snaps.ValueKind == JsonValueKind.Array)
        {
            foreach (var s in snaps.EnumerateArray())
            {
                var date = DateTimeOffset.FromUnixTimeSeconds(Long(s, "date-sec") ?? 0).AddTicks((Long(s, "date-nsec") ?? 0) / 100);
                var clock = TimeSpan.FromSeconds(Long(s, "vm-clock-sec") ?? 0) + TimeSpan.FromTicks((Long(s, "vm-clock-nsec") ?? 0) / 100);
                snapshots.Add(new InternalSnapshot(
                    Str(s, "id") ?? "",
                    Str(s, "name") ?? "",
                    Long(s, "vm-state-size") ?? 0,
                    date,
                    clock,
                    Long(s, "icount")));
            }
        }
        bool? corrupt = null;
        if (e.TryGetProperty("format-specific", out var fs) && fs.ValueKind == JsonValueKind.Object
            && fs.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
            && data.TryGetProperty("corrupt", out var c) && c.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            corrupt = c.GetBoolean();
        }
        var backing = Str(e, "backing-filename");
        return new ImageInfo(
            Str(e, "filename") ?? throw new FormatException("qemu-img info JSON has no \"filename\""),
            Str(e, "format") ?? "",
            Long(e, "virtual-size") ?? throw new FormatException("qemu-img info JSON has no \"virtual-size\""),
            Long(e, "actual-size"),
            backing,
            Str(e, "full-backing-filename") ?? backing,
            Str(e, "backing-filename-format"),
            (int?)Long(e, "cluster-size"),
            e.TryGetProperty("dirty-flag", out var d) && d.ValueKind == JsonValueKind.True,
            corrupt,
            snapshots);
    }

    internal static string DisplayName(string filename)
    {
        if (ClassifyBackingName(filename) == BackingNameKind.Protocol)
        {
            return filename;
        }
        var name = Path.GetFileName(filename);
        return name.Length == 0 ? filename : name;
    }

    internal static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static long? Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
}
