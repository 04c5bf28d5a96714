using LabKernel.Host;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Machines;

namespace LabKernel.Libvirt;

/// <summary>How to run the embedded guest as a libvirt domain.</summary>
public sealed record LibvirtGuestOptions
{
    /// <summary>Domain name; must be unique on the host.</summary>
    public required string Name { get; init; }

    /// <summary>Where overlays and the serial log go. Null: a new temp folder, removed on dispose.</summary>
    public string? WorkFolder { get; init; }

    /// <summary>File name of the first overlay on the cached base image (the 000 procedure's overlay1).</summary>
    public string RootOverlayName { get; init; } = "overlay1.qcow2";

    /// <summary>An existing image (the caller's overlay on the guest image) to boot instead of making <see cref="RootOverlayName"/>.</summary>
    public string? RootDisk { get; init; }

    /// <summary>More disks after the root disk (<c>vdb</c>, ...): existing images, attached as they are.</summary>
    public IReadOnlyList<DomainDiskSpec> ExtraDisks { get; init; } = [];

    public GuestProfile Profile { get; init; } = GuestProfile.Lean;
    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;

    /// <summary>Where the guest image build reports its stages, when the image is not cached yet.</summary>
    public IProgress<GuestBuildProgress>? BuildProgress { get; init; }
    public int Cpus { get; init; } = GuestDefaults.Cpus;
    public DomainNetwork Network { get; init; } = DomainNetwork.None;
    public TimeSpan AgentTimeout { get; init; } = GuestDefaults.AgentTimeout;

    /// <summary>
    /// The hypervisor whose files the domain uses (<see cref="RootDisk"/>, <see cref="ExtraDisks"/>, <see cref="Image"/>'s
    /// files, the console log beside the root disk). Null: this machine.
    /// </summary>
    public ILabHost? Host { get; init; }

    /// <summary>The guest image as it is on <see cref="Host"/> (<see cref="HostGuestImages.EnsureOnAsync"/>). Null: this machine's, built or reused.</summary>
    public GuestImage? Image { get; init; }

    /// <summary>Start the domain after defining it (and wait for its agent).</summary>
    public bool Start { get; init; } = true;

    /// <summary>
    /// Spare PCIe root ports listed in the definition, where a disk can be hot-plugged while the domain runs. 0: none
    /// listed, and libvirt lays out the ports itself (one per device and one spare, on q35); virt-install lists its own.
    /// </summary>
    public int HotPlugSlots { get; init; }
}

/// <summary>
/// The lab's embedded Debian guest as a persistent libvirt domain: an overlay on the cached base image in a work
/// folder, a domain defined from <see cref="DomainSpec"/> (direct kernel boot, <c>type='qemu'</c> under TCG or
/// <c>'kvm'</c> when <see cref="Accelerator"/> picks KVM), started and waited for through the guest agent.
/// Disposing destroys and undefines the domain and deletes the work folder when the lab made it.
/// </summary>
public sealed class LibvirtGuest : IAsyncDisposable
{
    private readonly bool _ownsFolder;

    private LibvirtGuest(LibvirtDomain domain, GuestImage image, string folder, bool ownsFolder, string rootOverlay, AcceleratorChoice accel, string xml)
    {
        Domain = domain;
        Image = image;
        WorkFolder = folder;
        _ownsFolder = ownsFolder;
        RootOverlay = rootOverlay;
        Accelerator = accel;
        DefinedXml = xml;
    }

    public LibvirtDomain Domain { get; }
    public GuestImage Image { get; }
    public string WorkFolder { get; }

    /// <summary>The overlay the domain started on (its chain: base image &lt;- this).</summary>
    public string RootOverlay { get; }

    public AcceleratorChoice Accelerator { get; }

    /// <summary>The XML the domain was defined with.</summary>
    public string DefinedXml { get; }

    /// <summary>The guest's console log (on the domain's host: beside the root disk on another one).</summary>
    public string SerialLog { get; private init; } = "";

    /// <summary>How long the agent took to answer after start.</summary>
    public TimeSpan? BootToAgent { get; private set; }

    public string PathOf(string name) => Path.Combine(WorkFolder, name);

    /// <summary>Builds (or reuses) the guest image, makes the overlay, defines the domain and starts it.</summary>
    public static async Task<LibvirtGuest> CreateAsync(LibvirtConnection connection, LibvirtGuestOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        var host = options.Host ?? LocalHost.Instance;
        if (!host.IsLocal && (options.RootDisk is null || options.Image is null))
        {
            throw new LabUsageException($"a domain on {host.Name} needs its root disk and the guest image made there first");
        }
        var image = options.Image ?? await GuestImageBuilder.EnsureAsync(progress: options.BuildProgress, cancellationToken: cancellationToken).ConfigureAwait(false);
        var accel = await Machines.Accelerator.ChooseOnAsync(host, image.Kernel, cancellationToken).ConfigureAwait(false);
        var owns = options.WorkFolder is null;
        var folder = options.WorkFolder ?? Path.Combine(Path.GetTempPath(), $"labvirt-{options.Name}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(folder);
        LibvirtDomain? domain = null;
        try
        {
            string overlay;
            if (options.RootDisk is not null)
            {
                overlay = Path.GetFullPath(options.RootDisk);
                if (!await host.FileExistsAsync(overlay, cancellationToken).ConfigureAwait(false))
                {
                    throw new LabUsageException($"root disk {overlay} does not exist{(host.IsLocal ? "" : $" on {host.Name}")}");
                }
            }
            else
            {
                overlay = Path.Combine(folder, options.RootOverlayName);
                if (File.Exists(overlay))
                {
                    throw new OverlayExistsException(overlay);
                }
                await QemuImg.Local.CreateAsync(overlay, "qcow2", null, new CreateOptions { BackingFile = image.BaseImage, BackingFormat = "qcow2" }, cancellationToken).ConfigureAwait(false);
            }
            var spec = new DomainSpec
            {
                Name = options.Name,
                Type = accel.IsKvm ? "kvm" : "qemu",
                MemoryMiB = options.MemoryMiB,
                Cpus = options.Cpus,
                Kernel = image.Kernel,
                Initrd = image.InitrdFor(options.Profile),
                KernelCommandLine = GuestImage.KernelCommandLine(options.Profile),
                Disks = [new DomainDiskSpec(overlay), .. options.ExtraDisks],
                // Where the hypervisor writes: beside the root disk on another host.
                SerialLog = host.IsLocal ? Path.Combine(folder, "serial.log") : Path.Combine(Path.GetDirectoryName(overlay)!, "serial.log"),
                Network = options.Network,
                HotPlugSlots = options.HotPlugSlots,
            };
            var xml = spec.ToXml();
            domain = await connection.DefineDomainAsync(xml, cancellationToken).ConfigureAwait(false);
            var guest = new LibvirtGuest(domain, image, folder, owns, overlay, accel, xml) { SerialLog = spec.SerialLog! };
            var toRemove = domain;
            guest._exitHook = Host.ProcessExitHooks.Register($"libvirt domain {options.Name}", () => RemoveDomainAsync(toRemove).GetAwaiter().GetResult());
            if (options.Start)
            {
                await domain.StartAsync(cancellationToken).ConfigureAwait(false);
                guest.BootToAgent = await domain.WaitForAgentAsync(options.AgentTimeout, cancellationToken).ConfigureAwait(false);
            }
            return guest;
        }
        catch
        {
            if (domain is not null)
            {
                await RemoveDomainAsync(domain).ConfigureAwait(false);
            }
            if (owns)
            {
                LabPaths.TryDeleteFolder(folder);
            }
            throw;
        }
    }

    /// <summary>Destroys and undefines the domain (with its snapshot metadata); deletes the work folder when the lab made it.</summary>
    /// <remarks>
    /// When libvirtd cannot be reached (it was stopped under the domain) the QEMU process may still run on the work
    /// folder: the folder is then kept and <see cref="CleanupError"/> says why, so nothing is deleted under a
    /// running guest.
    /// </remarks>
    public async ValueTask DisposeAsync()
    {
        _exitHook?.Dispose();
        CleanupError = await RemoveDomainAsync(Domain).ConfigureAwait(false);
        if (_ownsFolder && CleanupError is null)
        {
            LabPaths.TryDeleteFolder(WorkFolder);
        }
    }

    private IDisposable? _exitHook;

    /// <summary>Why disposing could not destroy/undefine the domain; null when it did.</summary>
    public string? CleanupError { get; private set; }

    private static async Task<string?> RemoveDomainAsync(LibvirtDomain domain)
    {
        string? error = null;
        try
        {
            await domain.DestroyAsync().ConfigureAwait(false);
        }
        catch (LibvirtException e)
        {
            error = e.Message;
        }
        try
        {
            await domain.UndefineAsync().ConfigureAwait(false);
        }
        catch (LibvirtException e)
        {
            error ??= e.Message;
        }
        domain.Dispose();
        return error;
    }
}
