namespace LabKernel;

/// <summary>What runs the guest: QEMU started by the lab, or a libvirt domain (lab-made or the researcher's own).</summary>
public enum GuestBackend
{
    /// <summary>The embedded guest on a QEMU the lab starts itself (notebook parameter <c>Backend=qemu</c>).</summary>
    Qemu,

    /// <summary>A libvirt domain (notebook parameter <c>Backend=libvirt</c>, with or without <c>Domain</c>).</summary>
    Libvirt,
}

/// <summary>The backend's name as notebook parameters and findings write it.</summary>
public static class GuestBackendNames
{
    /// <summary><c>qemu</c> or <c>libvirt</c>: the value of the <c>Backend</c> parameter that chooses it.</summary>
    public static string Name(this GuestBackend backend) => backend switch
    {
        GuestBackend.Qemu => "qemu",
        GuestBackend.Libvirt => "libvirt",
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };
}
