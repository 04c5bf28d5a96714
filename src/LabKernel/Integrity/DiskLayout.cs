using System.Buffers.Binary;

namespace LabKernel.Integrity;

/// <summary>One partition of a raw disk: where it starts and how long it is, in bytes.</summary>
public sealed record DiskPartition(int Number, long Offset, long Length, string Scheme);

/// <summary>
/// Finds the filesystem to read on a raw disk image: the whole disk when it starts with an ext2/3/4 superblock
/// (the lab's own guest), else the partitions of an MBR or GPT table (a typical user's VM) that hold one.
/// Read-only, and without tools the host may lack (sfdisk).
/// </summary>
public static class DiskLayout
{
    private const int Sector = 512;

    /// <summary>The partitions in the MBR or GPT table of <paramref name="disk"/> (empty when there is none).</summary>
    public static IReadOnlyList<DiskPartition> ReadPartitions(Stream disk)
    {
        ArgumentNullException.ThrowIfNull(disk);
        var mbr = ReadAt(disk, 0, Sector);
        if (mbr.Length < Sector || mbr[510] != 0x55 || mbr[511] != 0xAA)
        {
            return [];
        }
        var entries = Enumerable.Range(0, 4).Select(i => mbr.AsSpan(446 + 16 * i, 16).ToArray()).ToArray();
        if (entries.Any(e => e[4] == 0xEE))
        {
            return ReadGpt(disk);
        }
        var parts = new List<DiskPartition>();
        for (var i = 0; i < 4; i++)
        {
            var type = entries[i][4];
            var first = BinaryPrimitives.ReadUInt32LittleEndian(entries[i].AsSpan(8));
            var count = BinaryPrimitives.ReadUInt32LittleEndian(entries[i].AsSpan(12));
            // 0x05/0x0F/0x85 are extended partitions (containers, no filesystem of their own).
            if (type != 0 && type is not (0x05 or 0x0F or 0x85) && count > 0)
            {
                parts.Add(new DiskPartition(i + 1, (long)first * Sector, (long)count * Sector, "mbr"));
            }
        }
        return parts;
    }

    private static IReadOnlyList<DiskPartition> ReadGpt(Stream disk)
    {
        var header = ReadAt(disk, Sector, Sector);
        if (header.Length < 92 || !header.AsSpan(0, 8).SequenceEqual("EFI PART"u8))
        {
            return [];
        }
        var entriesLba = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(72));
        var count = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(80));
        var size = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(84));
        if (count is <= 0 or > 1024 || size is < 128 or > 4096)
        {
            return [];
        }
        var table = ReadAt(disk, entriesLba * Sector, count * size);
        var parts = new List<DiskPartition>();
        for (var i = 0; i < count && (i + 1) * size <= table.Length; i++)
        {
            var e = table.AsSpan(i * size, size);
            if (e[..16].IndexOfAnyExcept((byte)0) < 0)
            {
                continue; // unused entry
            }
            var first = BinaryPrimitives.ReadInt64LittleEndian(e[32..]);
            var last = BinaryPrimitives.ReadInt64LittleEndian(e[40..]);
            if (last >= first)
            {
                parts.Add(new DiskPartition(i + 1, first * Sector, (last - first + 1) * Sector, "gpt"));
            }
        }
        return parts;
    }

    /// <summary>Whether an ext2/3/4 superblock (magic 0xEF53) starts 1024 bytes into <paramref name="offset"/>.</summary>
    public static bool HasExtFilesystem(Stream disk, long offset)
    {
        ArgumentNullException.ThrowIfNull(disk);
        var sb = ReadAt(disk, offset + 1024, 64);
        return sb.Length >= 58 && BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(56)) == 0xEF53;
    }

    /// <summary>
    /// Where the filesystem to read is: null for the whole disk, or the largest partition holding an ext
    /// filesystem. Throws a one-line <see cref="LabException"/> when there is none (LVM, XFS, an empty disk).
    /// </summary>
    public static DiskPartition? FindExtFilesystem(Stream disk, string what)
    {
        if (HasExtFilesystem(disk, 0))
        {
            return null;
        }
        var parts = ReadPartitions(disk);
        var ext = parts.Where(p => p.Offset + p.Length <= disk.Length && HasExtFilesystem(disk, p.Offset)).OrderByDescending(p => p.Length).FirstOrDefault();
        return ext ?? throw new LabException(parts.Count == 0
            ? $"{what} holds no ext2/3/4 filesystem and no partition table; the offline reader reads ext filesystems only"
            : $"none of {what}'s {parts.Count} partition(s) holds an ext2/3/4 filesystem (LVM, XFS and others are not read offline)");
    }

    private static byte[] ReadAt(Stream s, long offset, int count)
    {
        if (offset < 0 || offset >= s.Length)
        {
            return [];
        }
        s.Position = offset;
        var buffer = new byte[(int)Math.Min(count, s.Length - offset)];
        s.ReadExactly(buffer);
        return buffer;
    }
}
