using LabKernel.Libvirt;

using LabKernel.Machines;

namespace LabKernel.Backends;

/// <summary>What <see cref="LabGuests.StartAsync"/> starts.</summary>
public sealed record LabGuestOptions
{
    /// <summary><c>qemu</c> (the embedded guest on QEMU directly) or <c>libvirt</c>.</summary>
    public GuestBackend Backend { get; init; } = GuestBackend.Qemu;

    /// <summary>With <c>libvirt</c>: a domain of the user's to work on; empty for the embedded guest as a lab-made domain.</summary>
    public string? Domain { get; init; }

    /// <summary>With <c>libvirt</c>: the connection URI.</summary>
    public string LibvirtUri { get; init; } = LibvirtConnection.DefaultUri;

    /// <summary>With a user's domain: the disk to work on (its target, e.g. <c>vda</c>); empty for the first file disk.</summary>
    public string? DomainDisk { get; init; }

    /// <summary>A short name for the guest (the embedded domain's name gets a unique suffix).</summary>
    public string Name { get; init; } = "labguest";

    /// <summary>
    /// The machine the images (<see cref="Overlays"/>, <see cref="DataDisks"/>, <see cref="NewFile"/>'s files) are on:
    /// the experiment run's host (<see cref="Experiments.ExperimentRun.Host"/>), shared with a libvirt connection so
    /// one SSH session serves both. Null: the connection's own (<see cref="LibvirtConnection.GetHostAsync"/>), this
    /// machine for the QEMU backend.
    /// </summary>
    public Host.ILabHost? Host { get; init; }

    /// <summary>
    /// On another hypervisor, the folder under which the lab keeps its copy of the embedded guest's image for the
    /// domains it makes there (<see cref="Guests.HostGuestImages"/>); the notebook's <c>HostFolder</c>.
    /// </summary>
    public string HostFolder { get; init; } = Experiments.ExperimentRun.DefaultHostFolder;

    /// <summary>The folder on this machine for the guest's runtime files (console log, sockets).</summary>
    public required string WorkFolder { get; init; }

    /// <summary>
    /// The overlays the lab makes for the starting chain, lowest first, none existing yet: <c>[overlay1]</c> gives
    /// <c>base &lt;- overlay1</c>. For the embedded guest they are created with qemu-img before boot; on a user's
    /// running domain each is a live disk-only snapshot (the first quiesced when the agent can freeze).
    /// </summary>
    public required IReadOnlyList<string> Overlays { get; init; }

    /// <summary>
    /// Images the lab made for more disks after the root disk, attached as they are (the guest sees them as
    /// <c>/dev/vdb</c>, <c>/dev/vdc</c>, ...). Only for the embedded guest: a user's domain keeps its own disks.
    /// </summary>
    public IReadOnlyList<string> DataDisks { get; init; } = [];

    /// <summary>
    /// With a user's domain: where a new file of the lab's goes, given its role and file name (the overlays of the
    /// domain's other disks); returns the full path, registered as the lab's. Null: in <see cref="WorkFolder"/>.
    /// </summary>
    public Func<string, string, string>? NewFile { get; init; }

    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;

    /// <summary>Where the guest image build reports its stages, when the image is not cached yet (its first use).</summary>
    public IProgress<Guests.GuestBuildProgress>? BuildProgress { get; init; }

    /// <summary>Time limit for the guest agent to answer after start.</summary>
    public TimeSpan AgentTimeout { get; init; } = GuestDefaults.AgentTimeout;

    /// <summary>Time limit for a clean power-off before the guest is stopped hard.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>The clock of the guest's waits and time limits on the QEMU backend (<see cref="MachineOptions.Time"/>).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>A one-line <see cref="LabUsageException"/> naming the first option out of range (see <see cref="GuestDefaults.Check"/>).</summary>
    public void Validate()
    {
        GuestDefaults.Check(nameof(LabGuestOptions), MemoryMiB, GuestDefaults.Cpus, AgentTimeout);
        GuestDefaults.CheckPositive(nameof(LabGuestOptions), nameof(ShutdownTimeout), ShutdownTimeout);
        if (Time is null)
        {
            throw new LabUsageException("LabGuestOptions.Time: give a clock (TimeProvider.System unless a test fakes one)");
        }
        if (string.IsNullOrWhiteSpace(WorkFolder))
        {
            throw new LabUsageException("LabGuestOptions.WorkFolder must name a folder");
        }
    }
}
