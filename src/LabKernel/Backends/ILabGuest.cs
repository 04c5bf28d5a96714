using LabKernel.Block;
using LabKernel.GuestAgent;

namespace LabKernel.Backends;

/// <summary>
/// A running guest an experiment works on, whichever backend runs it: the embedded guest on QEMU directly, the
/// embedded guest as a libvirt domain, or a user's own libvirt domain. The experiment sees the same three things
/// on all of them: the guest agent, the block operations (<see cref="ILabBlock"/>) and the root disk's name.
/// </summary>
public interface ILabGuest : IAsyncDisposable
{
    /// <summary><c>qemu</c> or <c>libvirt</c>.</summary>
    GuestBackend Backend { get; }

    /// <summary>The guest's name (the QEMU <c>-name</c> or the libvirt domain).</summary>
    string Name { get; }

    /// <summary>The root disk as the block operations name it: <c>disk0</c> (QEMU) or the target, <c>vda</c> (libvirt).</summary>
    string Disk { get; }

    /// <summary>
    /// The image below the lab's first overlay: the cached guest image, or the user's own disk image. The lab only
    /// reads it: every write of the experiment goes into overlays it created.
    /// </summary>
    string BaseImage { get; }

    /// <summary>One line for a notebook: what runs, where, and how long it took to answer.</summary>
    string Description { get; }

    /// <summary>
    /// The machine the guest's images are on, where the lab runs qemu-img and makes, reads, hashes and deletes them:
    /// this machine, or a libvirt domain's hypervisor over SSH. Every image path of the guest is a path there.
    /// </summary>
    Host.ILabHost Host { get; }

    /// <summary>From start to the guest agent's first answer (null when the guest was already running).</summary>
    TimeSpan? BootToAgent { get; }

    IGuestAgent Agent { get; }

    /// <summary>
    /// The data disks (<see cref="LabGuestOptions.DataDisks"/>) as the block operations name them: <c>disk1</c>, ...
    /// on QEMU, <c>vdb</c>, ... on libvirt. The guest sees them in the same order as <c>/dev/vdb</c>, ...
    /// </summary>
    IReadOnlyList<string> DataDisks { get; }

    /// <summary>
    /// The data disks as the guest sees them, in the order of <see cref="DataDisks"/>: <c>/dev/vdb</c>, ... on the
    /// embedded guest; on a user's domain, where the lab hot-plugs them after the domain's own disks, the device the
    /// guest gave each (found by its serial).
    /// </summary>
    IReadOnlyList<string> DataDiskDevices { get; }

    /// <summary>What this guest can do beyond the common operations; a notebook asks here, never by type.</summary>
    LabCapabilities Capabilities { get; }

    ILabBlock Block { get; }

    /// <summary>How this backend takes and reverts each kind of snapshot (<see cref="GuestSnapshots"/> measures around it).</summary>
    IGuestSnapshotMaker Snapshots { get; }

    /// <summary>The QEMU process's pid on this host, when known (for looking at the files it holds open).</summary>
    int? QemuProcessId { get; }

    /// <summary>
    /// For a user's domain, after dispose: how it was handed back and the evidence that the lab did not write its
    /// image (SHA-256 at take-over and at hand-back). Null for guests the lab made, and before dispose.
    /// </summary>
    DomainHandBack? HandBack { get; }

    /// <summary>For a user's domain: how the lab took it over (whether its first live overlay was quiesced). Null for guests the lab made.</summary>
    DomainTakeOver? TakeOver { get; }

    /// <summary>Powers the guest off cleanly (through the agent), so its layers are closed and can be read offline.</summary>
    Task StopAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Reboots the guest from inside (its own reboot, through the agent) and waits until the agent answers from the
    /// new boot (a different <c>/proc/sys/kernel/random/boot_id</c>). Returns how long that took.
    /// </summary>
    Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Powers the guest off cleanly (if it runs), points disks at other images (<paramref name="diskImages"/>: disk
    /// name to an image the lab made, e.g. a fresh overlay on an older layer: an external revert) and boots it
    /// again, waiting for the agent. Needs <see cref="LabCapabilities.BootAgain"/>. Returns boot-to-agent time.
    /// </summary>
    Task<TimeSpan> BootAgainAsync(IReadOnlyDictionary<string, string>? diskImages = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Puts data disk <paramref name="disk"/> on another image the lab made while the guest runs: the guest's mounts
    /// of it are unmounted, the disk is unplugged, and <paramref name="image"/> plugged in its place (an external
    /// revert of a data disk on a guest the lab may not boot again). Needs <see cref="LabCapabilities.SwapDataDisks"/>;
    /// <see cref="DataDiskDevices"/> then names the new device. Returns how long it took.
    /// </summary>
    Task<TimeSpan> SwapDataDiskAsync(string disk, string image, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stops the guest (if it runs) and starts it again from a saved VM state (<paramref name="memoryState"/>, a
    /// checkpoint's memory file) instead of booting: every disk must be given in <paramref name="diskImages"/> as an
    /// image the lab made over the layer frozen with that state, so memory and disks are of the same instant. Needs
    /// <see cref="LabCapabilities.RestoreMemory"/>. Returns the time from QEMU's start to the agent's answer.
    /// </summary>
    Task<TimeSpan> RestoreAsync(IReadOnlyDictionary<string, string> diskImages, string memoryState, CancellationToken cancellationToken = default);

    /// <summary>
    /// The QMP view of the guest's QEMU as a <see cref="BlockLayer"/>: the machine's own monitor, or for libvirt the
    /// monitor passthrough the documents use (<c>virsh qemu-monitor-command</c>), with events.
    /// </summary>
    Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default);
}

/// <summary>Operations only some guests offer; see <see cref="ILabGuest.Capabilities"/>.</summary>
[Flags]
public enum LabCapabilities
{
    None = 0,

    /// <summary>The disk holds the lab's own guest image, so a copy of any of its layers boots on its own (<c>BootedCopy</c>).</summary>
    BootCopies = 1,

    /// <summary>The lab may power the guest off and boot it again on other images (<see cref="ILabGuest.BootAgainAsync"/>).</summary>
    BootAgain = 2,

    /// <summary>The lab attached data disks of its own (<see cref="ILabGuest.DataDisks"/>).</summary>
    DataDisks = 4,

    /// <summary>libvirt snapshot records (<c>virsh snapshot-list</c>) and libvirt's own revert.</summary>
    LibvirtSnapshots = 8,

    /// <summary>The lab can start the guest from a checkpoint's saved memory (<see cref="ILabGuest.RestoreAsync"/>).</summary>
    RestoreMemory = 16,

    /// <summary>The lab's data disks can be put on other images while the guest runs (<see cref="ILabGuest.SwapDataDiskAsync"/>).</summary>
    SwapDataDisks = 32,
}
