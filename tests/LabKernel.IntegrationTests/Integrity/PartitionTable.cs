using System.Buffers.Binary;

namespace LabKernel.IntegrationTests.Integrity;

/// <summary>Writes a minimal MBR or GPT partition table into a test disk (no sfdisk on the build machines).</summary>
internal static class PartitionTable
{
    public static void Write(Stream disk, string scheme, IReadOnlyList<(long Offset, long Length)> partitions)
    {
        var mbr = new byte[512];
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        if (scheme == "mbr")
        {
            for (var i = 0; i < partitions.Count; i++)
            {
                var e = mbr.AsSpan(446 + 16 * i, 16);
                e[4] = 0x83;
                BinaryPrimitives.WriteUInt32LittleEndian(e[8..], (uint)(partitions[i].Offset / 512));
                BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)(partitions[i].Length / 512));
            }
            disk.Position = 0;
            disk.Write(mbr);
            return;
        }
        // Protective MBR, then the GPT header at LBA 1 and 128-byte entries from LBA 2.
        var p = mbr.AsSpan(446, 16);
        p[4] = 0xEE;
        BinaryPrimitives.WriteUInt32LittleEndian(p[8..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)Math.Min(uint.MaxValue, disk.Length / 512 - 1));
        disk.Position = 0;
        disk.Write(mbr);
        var header = new byte[512];
        "EFI PART"u8.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(72), 2);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(80), 128);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(84), 128);
        disk.Position = 512;
        disk.Write(header);
        var entries = new byte[128 * 128];
        var linux = Guid.Parse("0FC63DAF-8483-4772-8E79-3D47D8E47DE4").ToByteArray();
        for (var i = 0; i < partitions.Count; i++)
        {
            var e = entries.AsSpan(i * 128, 128);
            linux.CopyTo(e);
            Guid.NewGuid().ToByteArray().CopyTo(e[16..]);
            BinaryPrimitives.WriteInt64LittleEndian(e[32..], partitions[i].Offset / 512);
            BinaryPrimitives.WriteInt64LittleEndian(e[40..], (partitions[i].Offset + partitions[i].Length) / 512 - 1);
        }
        disk.Position = 1024;
        disk.Write(entries);
    }
}
