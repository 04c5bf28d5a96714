using System.Text.Json;

namespace LabKernel.Images;

/// <summary>
/// One extent of <c>qemu-img map --output=json</c>: a range of guest bytes and where in the chain it lives.
/// </summary>
/// <param name="Start">Guest offset of the first byte.</param>
/// <param name="Length">Bytes in the extent.</param>
/// <param name="Depth">Layer that answers reads of this range (0 = active); for unallocated ranges, the base's depth.</param>
/// <param name="Present">True when some layer allocates the range (false: reads fall through to zeroes).</param>
/// <param name="Data">True when the range holds data (not a zero cluster or hole).</param>
/// <param name="Zero">True when the range reads as zeroes.</param>
/// <param name="Offset">Host offset of the data in the file at <see cref="Depth"/>; null for zeroes and holes.</param>
public sealed record AllocationExtent(long Start, long Length, int Depth, bool Present, bool Data, bool Zero, long? Offset)
{
    public long End => Start + Length;

    public bool Contains(long offset) => offset >= Start && offset < End;
}

/// <summary>The allocation map of an image and its backing chain, as <c>qemu-img map --output=json</c> reports it.</summary>
public sealed record AllocationMap(IReadOnlyList<AllocationExtent> Extents)
{
    /// <summary>Parses the JSON array of <c>qemu-img map --output=json</c>.</summary>
    public static AllocationMap Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var list = new List<AllocationExtent>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            list.Add(new AllocationExtent(
                ImageInfo.Long(e, "start") ?? throw new FormatException("map extent without \"start\""),
                ImageInfo.Long(e, "length") ?? throw new FormatException("map extent without \"length\""),
                (int)(ImageInfo.Long(e, "depth") ?? 0),
                // Old qemu-img versions have no "present"; there every listed extent with data or zero is allocated.
                Bool(e, "present") ?? true,
                Bool(e, "data") ?? false,
                Bool(e, "zero") ?? false,
                ImageInfo.Long(e, "offset")));
        }
        return new AllocationMap(list);
    }

    /// <summary>The extent that covers guest byte <paramref name="offset"/>; null beyond the end.</summary>
    public AllocationExtent? ExtentAt(long offset) => Extents.FirstOrDefault(x => x.Contains(offset));

    /// <summary>
    /// Which layer depth holds guest byte <paramref name="offset"/> (0 = active); null when no layer allocates it
    /// (reads return zeroes from nowhere) or the offset is past the end.
    /// </summary>
    public int? DepthHolding(long offset) => ExtentAt(offset) is { Present: true } x ? x.Depth : null;

    /// <summary>Bytes allocated (data or zero clusters) in the layer at <paramref name="depth"/>.</summary>
    public long BytesAllocatedAtDepth(int depth) => Extents.Where(x => x.Present && x.Depth == depth).Sum(x => x.Length);

    /// <summary>
    /// Bytes of data (not zero clusters, not holes) in the layer at <paramref name="depth"/>: what the layer holds
    /// that reads as something other than zeroes. A full backup allocates the whole disk, most of it as zero clusters.
    /// </summary>
    public long BytesOfDataAtDepth(int depth) => Extents.Where(x => x.Present && x.Data && !x.Zero && x.Depth == depth).Sum(x => x.Length);

    /// <summary>Bytes allocated in the active layer (depth 0): what a commit of the active layer would copy.</summary>
    public long BytesAllocatedInActive => BytesAllocatedAtDepth(0);

    /// <summary>Guest size covered by the map.</summary>
    public long Length => Extents.Count == 0 ? 0 : Extents[^1].End;

    private static bool? Bool(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
