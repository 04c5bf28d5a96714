using LabKernel.Libvirt;

using LabKernel.Machines;

namespace LabNotebooks;

/// <summary>
/// What a notebook's parameter cell decides: where the guest runs (<see cref="Backend"/>, <see cref="Domain"/>)
/// and what happens to the run's files. <see cref="Lab.StartAsync"/> turns it into a running experiment.
/// </summary>
public sealed record LabSetup
{
    /// <summary><c>qemu</c> (the embedded guest on QEMU directly) or <c>libvirt</c>.</summary>
    public string Backend { get; init; } = "qemu";

    /// <summary>With <c>libvirt</c>: your own domain; empty for the embedded guest as a lab-made domain.</summary>
    public string Domain { get; init; } = "";

    /// <summary>With your domain: the disk to work on (empty: its first file disk).</summary>
    public string DomainDisk { get; init; } = "";

    /// <summary>
    /// The libvirt connection: <c>qemu:///system</c> here, or <c>qemu+ssh://USER@HOST/system?keyfile=KEY&amp;known_hosts=FILE</c>
    /// for a domain on another hypervisor (the lab then works on its image files there over SSH).
    /// </summary>
    public string LibvirtUri { get; init; } = LibvirtConnection.DefaultUri;

    /// <summary>
    /// With a domain on another host: the folder there under which the lab makes a private folder for the run's
    /// images (overlays, copies, scratch reads); empty for <c>/var/tmp/labnotebooks</c>. Ignored on this machine,
    /// where the images go into the run folder.
    /// </summary>
    public string HostFolder { get; init; } = "";

    /// <summary>Keep every file the run made (described in <c>artifacts.json</c>) instead of removing them.</summary>
    public bool KeepArtifacts { get; init; }

    /// <summary>Where the run folder goes (empty: the lab's cache, <c>~/.cache/labnotebooks/runs</c>).</summary>
    public string OutputDir { get; init; } = "";

    /// <summary>The lab's starting overlays on the guest's image, lowest first, by role (file <c>ROLE.qcow2</c>).</summary>
    public IReadOnlyList<string> Overlays { get; init; } = ["overlay1"];

    /// <summary>Blank data disks the lab makes and attaches after the root disk (the guest sees /dev/vdb, ...).</summary>
    public IReadOnlyList<DataDisk> DataDisks { get; init; } = [];

    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;

    /// <summary>
    /// A one-line <see cref="LabKernel.LabUsageException"/> naming the first parameter out of range: the backend and
    /// domain (<see cref="LabKernel.Backends.LabGuests.CheckChoice(string?, string?)"/>), memory, the overlays' and data
    /// disks' roles (each a distinct file name) and the data disks' sizes. <see cref="Lab.StartAsync"/> calls it first.
    /// </summary>
    public void Validate()
    {
        LabKernel.Backends.LabGuests.CheckChoice(Backend, Domain);
        GuestDefaults.Check(nameof(LabSetup), MemoryMiB, GuestDefaults.Cpus, GuestDefaults.AgentTimeout);
        if (Overlays.Count == 0)
        {
            throw new LabKernel.LabUsageException("LabSetup.Overlays: the starting chain needs at least one overlay for the lab to write into");
        }
        var roles = Overlays.Concat(DataDisks.Select(d => d.Role)).ToList();
        foreach (var role in roles)
        {
            if (string.IsNullOrWhiteSpace(role) || role.IndexOfAny(['/', '\\', '\0']) >= 0 || role is "." or "..")
            {
                throw new LabKernel.LabUsageException($"LabSetup: '{role}' is not a role a file can be named after (ROLE.qcow2)");
            }
        }
        if (roles.Distinct(StringComparer.Ordinal).Count() != roles.Count)
        {
            throw new LabKernel.LabUsageException($"LabSetup: the overlays' and data disks' roles must differ ({string.Join(", ", roles)})");
        }
        foreach (var d in DataDisks.Where(d => d.SizeMiB < 1))
        {
            throw new LabKernel.LabUsageException($"LabSetup.DataDisks: {d.Role} must be at least 1 MiB, not {d.SizeMiB}");
        }
    }
}

/// <summary>A blank qcow2 data disk of <paramref name="SizeMiB"/>, registered in the run under <paramref name="Role"/>.</summary>
public sealed record DataDisk(string Role, long SizeMiB);
