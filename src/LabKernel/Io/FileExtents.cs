using System.Globalization;
using System.Text.RegularExpressions;
using LabKernel.GuestAgent;
using LabKernel.Images;

namespace LabKernel.Io;

/// <summary>One extent of a file on its block device, in bytes; <see cref="Unwritten"/> for fallocated space (reads return zeroes without touching the device).</summary>
public sealed record FileExtent(long LogicalOffset, long DeviceOffset, long Length, bool Unwritten);

/// <summary>
/// Where a guest file lies on its disk, from <c>filefrag -v</c> in the guest. With a filesystem made on the whole
/// device (no partition table), a device offset is a guest disk offset, which <c>qemu-img map</c> resolves to the
/// layer of the chain that holds it.
/// </summary>
public sealed partial record FileExtents(string Path, long Size, IReadOnlyList<FileExtent> Extents)
{
    /// <summary>Runs <c>filefrag -v</c> on <paramref name="path"/> in the guest and parses it.</summary>
    public static async Task<FileExtents> ReadAsync(IGuestShell guest, string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        return Parse(await guest.OutputAsync(["filefrag", "-v", path], TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false));
    }

    [GeneratedRegex(@"^File size of (?<path>.+) is (?<size>\d+) \((?<blocks>\d+) blocks? of (?<bs>\d+) bytes\)", RegexOptions.Multiline)]
    private static partial Regex Header();

    [GeneratedRegex(@"^\s*\d+:\s+(?<l0>\d+)\.\.\s*(?<l1>\d+):\s+(?<p0>\d+)\.\.\s*(?<p1>\d+):\s+(?<len>\d+):(?<rest>.*)$", RegexOptions.Multiline)]
    private static partial Regex Row();

    /// <summary>Parses <c>filefrag -v</c>'s output; anything else gives a one-line <see cref="LabException"/>.</summary>
    public static FileExtents Parse(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var h = Header().Match(output);
        if (!h.Success)
        {
            throw new LabException($"filefrag printed no 'File size of ...' line: {output.Split('\n')[0].Trim()}");
        }
        var bs = long.Parse(h.Groups["bs"].Value, CultureInfo.InvariantCulture);
        var extents = new List<FileExtent>();
        foreach (Match m in Row().Matches(output))
        {
            long L(string g) => long.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
            extents.Add(new FileExtent(L("l0") * bs, L("p0") * bs, L("len") * bs, m.Groups["rest"].Value.Contains("unwritten", StringComparison.Ordinal)));
        }
        return new FileExtents(h.Groups["path"].Value, long.Parse(h.Groups["size"].Value, CultureInfo.InvariantCulture), extents);
    }

    /// <summary>Bytes of the file in written extents (what a read reaches the device for).</summary>
    public long WrittenBytes => Math.Min(Size, Extents.Where(e => !e.Unwritten).Sum(e => e.Length));

    /// <summary>Bytes of the file in unwritten (fallocated) extents.</summary>
    public long UnwrittenBytes => Extents.Where(e => e.Unwritten).Sum(e => e.Length);

    /// <summary>
    /// How many of the file's written bytes each layer of a chain holds, by the layer's depth in
    /// <paramref name="map"/> (0 = the active layer); bytes no layer holds are counted under -1.
    /// </summary>
    public IReadOnlyDictionary<int, long> BytesByLayer(AllocationMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var byDepth = new SortedDictionary<int, long>();
        foreach (var e in Extents.Where(e => !e.Unwritten))
        {
            var at = e.DeviceOffset;
            var end = e.DeviceOffset + e.Length;
            while (at < end)
            {
                var x = map.ExtentAt(at);
                var upTo = x is null ? end : Math.Min(end, x.End);
                var depth = x is { Present: true } ? x.Depth : -1;
                byDepth[depth] = byDepth.GetValueOrDefault(depth) + (upTo - at);
                at = upTo;
            }
        }
        return byDepth;
    }
}
