using System.Globalization;
using LabKernel.GuestAgent;

namespace LabKernel.Backends;

/// <summary>
/// Data the guest holds in memory, as a working guest does: a file of random bytes in a tmpfs the lab mounts. A
/// snapshot that saves memory must copy every such page (QEMU skips free, zero-filled pages), so its pause grows with
/// it; an idle lab guest holds little, and its internal snapshot pauses it no longer than a loaded host's ping gaps
/// (notebook 06 measured 177-717 ms). Gone after any boot, like <see cref="InstantMarkers"/>' memory marker.
/// </summary>
public static class MemoryInUse
{
    /// <summary>The tmpfs the lab mounts for the data.</summary>
    public const string Folder = "/mnt/lab-memory-in-use";

    /// <summary>The file that holds it.</summary>
    public const string HeldFile = Folder + "/held";

    /// <summary>At most this many quarters of the guest's available memory are held (a small domain must not run out) ...</summary>
    public const int AvailableQuarters = 3;

    /// <summary>... and at least this much of it stays available for the guest's own work (its agent, the lab's commands).</summary>
    public const int ReserveMiB = 96;

    /// <summary>
    /// Makes the guest hold <paramref name="mebibytes"/> MiB of random data in memory (at most three quarters of its
    /// available memory, leaving at least <see cref="ReserveMiB"/>, in 4 MiB steps), unless it already holds some since its last boot. Returns the MiB it holds; 0 when
    /// asked for none.
    /// </summary>
    public static async Task<int> HoldAsync(IGuestShell guest, int mebibytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        if (mebibytes < 0)
            throw new LabUsageException($"the memory in use must be 0 MiB or more, not {mebibytes}");
        if (mebibytes == 0)
            return 0;
        // One cat of a 4 MiB seed repeated: a shell loop or `yes | head` costs seconds more under TCG.
        var script = $$"""
            if [ -f {{HeldFile}} ]; then echo $(( $(stat -c %s {{HeldFile}}) / 1048576 )); exit 0; fi
            avail=0
            while read k v u; do [ "$k" = MemAvailable: ] && avail=$((v / 1024)); done < /proc/meminfo
            n={{mebibytes}}; most=$((avail * {{AvailableQuarters}} / 4))
            [ $n -le $most ] || n=$most
            [ $n -le $((avail - {{ReserveMiB}})) ] || n=$((avail - {{ReserveMiB}}))
            n=$((n / 4 * 4))
            [ $n -ge 4 ] || { echo 0; exit 0; }
            mkdir -p {{Folder}}
            mountpoint -q {{Folder}} || mount -t tmpfs -o size=$((n + 4))m lab-memory-in-use {{Folder}}
            head -c 4194304 /dev/urandom > {{Folder}}/seed
            cat $(for i in $(seq $((n / 4))); do echo {{Folder}}/seed; done) > {{HeldFile}}
            rm {{Folder}}/seed
            echo $n
            """;
        var r = await guest.ShellAsync(script, new GuestExecOptions { Check = true, Timeout = TimeSpan.FromMinutes(5) }, cancellationToken).ConfigureAwait(false);
        return int.TryParse(r.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var held)
            ? held
            : throw new LabException($"could not read how much memory the guest holds: '{r.StandardOutput.Trim()}'");
    }
}
