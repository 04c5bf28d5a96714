namespace LabKernel.Backends;

/// <summary>
/// The names virtio disks get, for both backends: the root disk is <c>vda</c>, the lab's data disks follow as
/// <c>vdb</c>, <c>vdc</c>, ... (libvirt's targets, and the order QEMU's virtio-blk devices appear in a guest that has
/// no other disks). A hot-plugged disk may appear under another name in the guest: the lab finds it by its serial.
/// </summary>
internal static class VirtioTargets
{
    /// <summary>How many data disk names there are after <c>vda</c>: <c>vdb</c> to <c>vdz</c>.</summary>
    public const int DataDiskCount = 25;

    /// <summary>The target of data disk <paramref name="index"/> (0 is <c>vdb</c>).</summary>
    public static string DataDisk(int index) =>
        index is >= 0 and < DataDiskCount ? $"vd{(char)('b' + index)}" : throw new ArgumentOutOfRangeException(nameof(index), index, $"virtio data disks are vdb to vdz ({DataDiskCount})");

    /// <summary>
    /// The first data disk name (<c>vdb</c> on) that <paramref name="used"/> does not hold: where the lab plugs its
    /// data disk into domain <paramref name="domain"/>. With every name taken, a one-line <see cref="LabException"/>
    /// listing them.
    /// </summary>
    public static string FirstFree(IReadOnlySet<string> used, string domain) =>
        Enumerable.Range(0, DataDiskCount).Select(DataDisk).FirstOrDefault(t => !used.Contains(t))
            ?? throw new LabException($"domain '{domain}' has no free virtio disk name for the lab's data disk: vdb to vdz are all taken ({used.Count(u => u.StartsWith("vd", StringComparison.Ordinal))} vd disks); detach one of yours or give the lab a domain with fewer disks");

    /// <summary>The device node of a target in the guest, as its kernel names it when nothing else moved it.</summary>
    public static string Device(string target) => "/dev/" + target;
}
