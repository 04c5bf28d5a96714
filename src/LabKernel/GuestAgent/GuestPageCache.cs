using System.Globalization;
using System.Text;

namespace LabKernel.GuestAgent;

/// <summary>
/// The guest kernel's dirty page cache at one instant, from <c>/proc/meminfo</c>: data written by programs that has
/// not reached the disk yet (<c>Dirty</c>) or is on its way (<c>Writeback</c>). A crash-consistent snapshot taken
/// at that instant holds none of it.
/// </summary>
/// <param name="DirtyKiB">Dirty: waiting to be written back.</param>
/// <param name="WritebackKiB">Writeback: being written back now.</param>
public sealed record GuestPageCache(long DirtyKiB, long WritebackKiB)
{
    /// <summary>Dirty plus writeback, in bytes: what a snapshot at this instant would miss.</summary>
    public long NotOnDiskBytes => (DirtyKiB + WritebackKiB) * 1024;

    /// <summary>
    /// The share of the flushed bytes, in tenths, that must still be dirty or under writeback for
    /// <see cref="HeldMostOf"/>: a little of what a writer flushed may already have been written back.
    /// </summary>
    public const long HeldTenths = 9;

    /// <summary>
    /// Whether at least <see cref="HeldTenths"/>/10 of <paramref name="flushedBytes"/> (integer arithmetic) were not on
    /// the disk yet: notebooks 01 and 02's evidence that an empty snapshot layer (k = 0) is explained by the page cache.
    /// False when the writer's lines had mostly reached the disk, so an empty layer would need another cause.
    /// </summary>
    public bool HeldMostOf(long flushedBytes) => NotOnDiskBytes >= flushedBytes * HeldTenths / 10;

    /// <summary>
    /// Reads it through the agent (<c>guest-file-read</c> of <c>/proc/meminfo</c>). The kernel keeps these counters
    /// per CPU and folds them into the totals in batches, so <c>/proc/meminfo</c> can lag by several pages (16 KiB
    /// short of a 118 KiB write was seen); reading <c>/proc/sys/vm/stat_refresh</c> first (root only, as the agent
    /// runs) folds them, so the numbers are exact. Without root the refresh is skipped and the numbers are as read.
    /// </summary>
    public static async Task<GuestPageCache> ReadAsync(IGuestAgent agent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(agent);
        try
        {
            await agent.ReadFileAsync("/proc/sys/vm/stat_refresh", cancellationToken).ConfigureAwait(false);
        }
        catch (LabException)
        {
            // Not root, or an old kernel: the counters stay as the kernel last folded them.
        }
        return Parse(Encoding.ASCII.GetString(await agent.ReadFileAsync("/proc/meminfo", cancellationToken).ConfigureAwait(false)));
    }

    /// <summary>Parses <c>/proc/meminfo</c> text; a missing field is a <see cref="LabException"/> naming it.</summary>
    public static GuestPageCache Parse(string meminfo)
    {
        long Field(string name)
        {
            foreach (var line in meminfo.Split('\n'))
            {
                if (line.StartsWith(name + ":", StringComparison.Ordinal))
                {
                    var value = line[(name.Length + 1)..].Trim().Split(' ')[0];
                    if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var kib))
                    {
                        return kib;
                    }
                }
            }
            throw new LabException($"/proc/meminfo has no readable '{name}:' line");
        }
        return new GuestPageCache(Field("Dirty"), Field("Writeback"));
    }
}
