using System.Globalization;
using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Images;

namespace LabKernel.Block;

/// <summary>What a guest sequence writer did: one guest-clock timestamp (ns) after each block it wrote.</summary>
/// <param name="Device">The guest block device written.</param>
/// <param name="Blocks">Blocks written.</param>
/// <param name="TimestampsNs">Guest <c>date +%s%N</c> after each write, in order.</param>
public sealed record DeviceWriteResult(string Device, int Blocks, IReadOnlyList<long> TimestampsNs)
{
    /// <summary>Time between consecutive completed writes.</summary>
    public IReadOnlyList<TimeSpan> Intervals =>
        TimestampsNs.Zip(TimestampsNs.Skip(1), (a, b) => TimeSpan.FromTicks((b - a) / 100)).ToArray();

    public TimeSpan MedianInterval
    {
        get
        {
            var sorted = Intervals.Order().ToArray();
            return sorted.Length == 0 ? TimeSpan.Zero : sorted[sorted.Length / 2];
        }
    }

    /// <summary>The longest gap between two writes: the stall a writer saw.</summary>
    public TimeSpan LongestInterval => Intervals.Count == 0 ? TimeSpan.Zero : Intervals.Max();
}

/// <summary>Whether an image holds a consistent prefix of a sequence writer's blocks.</summary>
/// <param name="ValidBlocks">Blocks 0..ValidBlocks-1 carry their own sequence number.</param>
/// <param name="Consistent">True when every block after the prefix is still empty (no hole, no later block without an earlier one).</param>
/// <param name="FirstInconsistent">The first block past the prefix that is not empty, when inconsistent.</param>
public sealed record DevicePrefix(int ValidBlocks, bool Consistent, int? FirstInconsistent);

/// <summary>
/// A guest writer for crash-consistency checks: block i of a guest device gets the text <c>seq %08d</c> (padded to
/// 4 KiB), written in order with O_DIRECT and O_DSYNC so each write is on the virtual disk before the next
/// starts. Any point-in-time copy of the disk must then hold a prefix of the sequence and nothing after it.
/// </summary>
public static class DeviceSequenceWriter
{
    public const int BlockSize = 4096;

    /// <summary>Runs the writer in the guest through the agent (<c>/bin/sh -c</c> loop of <c>dd</c>) and returns its timestamps.</summary>
    public static async Task<DeviceWriteResult> RunAsync(IGuestShell guest, string device, int blocks, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var script = string.Create(CultureInfo.InvariantCulture,
            $"i=0; while [ $i -lt {blocks} ]; do printf 'seq %08d\\n' $i | dd of={Processes.ShellQuote.Quote(device)} bs={BlockSize} seek=$i count=1 conv=sync,notrunc oflag=direct,dsync status=none || exit 1; date +%s%N; i=$((i+1)); done");
        var r = await guest.ShellAsync(script, new GuestExecOptions { Timeout = timeout ?? TimeSpan.FromMinutes(10), Check = true }, cancellationToken).ConfigureAwait(false);
        var stamps = r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        return new DeviceWriteResult(device, blocks, stamps);
    }

    /// <summary>Finds the guest device (<c>/dev/vdX</c>) whose size in bytes is <paramref name="sizeBytes"/>.</summary>
    public static async Task<string> FindDeviceBySizeAsync(IGuestShell guest, long sizeBytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var r = await guest.ShellAsync("for d in /sys/block/vd*; do echo ${d##*/} $(cat $d/size); done", new GuestExecOptions { Check = true }, cancellationToken).ConfigureAwait(false);
        foreach (var line in r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            if (parts.Length == 2 && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var sectors) && sectors * 512 == sizeBytes)
            {
                return "/dev/" + parts[0];
            }
        }
        throw new LabException($"no guest virtio disk of {sizeBytes} bytes: {r.StandardOutput.Trim()}");
    }

    /// <summary>
    /// Reads the guest view of <paramref name="image"/> (its whole chain; force-share, so it may be in use) and
    /// checks it holds a prefix of the sequence: <c>qemu-img convert -U -O raw</c> into a temp file, then a scan.
    /// </summary>
    public static async Task<DevicePrefix> ReadPrefixAsync(string image, int blocks, CancellationToken cancellationToken = default)
    {
        var raw = Path.Combine(Path.GetTempPath(), $"seq-{Guid.NewGuid():N}.raw");
        try
        {
            await QemuImg.Local.ConvertAsync(image, raw, "raw", new ConvertOptions { ForceShare = true }, cancellationToken).ConfigureAwait(false);
            await using var fs = File.OpenRead(raw);
            var buffer = new byte[BlockSize];
            var valid = 0;
            var inPrefix = true;
            for (var i = 0; i < blocks; i++)
            {
                fs.Position = (long)i * BlockSize;
                var n = await fs.ReadAtLeastAsync(buffer, BlockSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                var expected = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"seq {i:00000000}\n"));
                var matches = n == BlockSize && buffer.AsSpan(0, expected.Length).SequenceEqual(expected) && buffer.AsSpan(expected.Length).IndexOfAnyExcept((byte)0) < 0;
                var empty = n < BlockSize || buffer.AsSpan().IndexOfAnyExcept((byte)0) < 0;
                if (inPrefix && matches)
                {
                    valid++;
                    continue;
                }
                inPrefix = false;
                if (!empty)
                {
                    return new DevicePrefix(valid, false, i);
                }
            }
            return new DevicePrefix(valid, true, null);
        }
        finally
        {
            File.Delete(raw);
        }
    }
}
