using LabKernel.Host;
using LabKernel.Machines;
using LabKernel.Images;

namespace LabKernel.Guests;

/// <summary>How to start the embedded Debian guest.</summary>
public sealed record EmbeddedGuestOptions
{
    public GuestProfile Profile { get; init; } = GuestProfile.Lean;

    /// <summary>
    /// The root disk's active layer. Null: a fresh overlay on the cached base image in <see cref="WorkFolder"/>.
    /// A caller-made chain must end in the cached base image.
    /// </summary>
    public string? RootDisk { get; init; }

    /// <summary>Where the run's overlays go. Null: a new folder under the cache's runs/, removed on dispose.</summary>
    public string? WorkFolder { get; init; }

    /// <summary>More disks after the root disk (node names must differ from <c>disk0</c>).</summary>
    public IReadOnlyList<DriveSpec> ExtraDrives { get; init; } = [];

    public int MemoryMiB { get; init; } = 1024;
    public int Cpus { get; init; } = 1;
    public string Name { get; init; } = "labguest";
    public TimeSpan AgentTimeout { get; init; } = TimeSpan.FromSeconds(180);
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];
    public IProgress<GuestBuildProgress>? BuildProgress { get; init; }

    /// <summary>A saved VM state to start from instead of booting (see <see cref="MachineOptions.IncomingState"/>).</summary>
    public string? IncomingState { get; init; }
}

/// <summary>
/// The lab's default guest: the cached Debian image (built on first use) started on QEMU directly, on an overlay
/// so the cached base is never written. Disposing shuts it down and removes the overlay folder it created.
/// </summary>
public sealed class EmbeddedGuest : IAsyncDisposable
{
    private readonly bool _ownsWorkFolder;

    private EmbeddedGuest(GuestImage image, QemuMachine machine, string workFolder, bool ownsWorkFolder, string rootDisk)
    {
        Image = image;
        Machine = machine;
        WorkFolder = workFolder;
        _ownsWorkFolder = ownsWorkFolder;
        RootDisk = rootDisk;
    }

    public GuestImage Image { get; }
    public QemuMachine Machine { get; }
    public string WorkFolder { get; }

    /// <summary>The root disk's active layer at start.</summary>
    public string RootDisk { get; }

    /// <summary>Builds the image if needed, makes an overlay, starts QEMU and waits for the guest agent.</summary>
    public static async Task<EmbeddedGuest> StartAsync(EmbeddedGuestOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EmbeddedGuestOptions();
        var image = await GuestImageBuilder.EnsureAsync(progress: options.BuildProgress, cancellationToken: cancellationToken).ConfigureAwait(false);
        var owns = options.WorkFolder is null;
        var work = options.WorkFolder ?? Path.Combine(LabPaths.CacheRoot, "runs", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(work);
        try
        {
            var root = options.RootDisk;
            if (root is null)
            {
                root = Path.Combine(work, "root-overlay.qcow2");
                if (owns)
                {
                    Host.LabFiles.MarkFolder(work);
                }
                // Refused (OverlayExistsException) when a root-overlay.qcow2 the lab did not make is already there.
                await QemuImg.CreateAsync(root, "qcow2", options: new CreateOptions { BackingFile = image.BaseImage, BackingFormat = "qcow2" }, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            var machine = await QemuMachine.StartAsync(new MachineOptions
            {
                Name = options.Name,
                Drives = [new DriveSpec(root, "disk0"), .. options.ExtraDrives],
                Kernel = image.Kernel,
                Initrd = image.InitrdFor(options.Profile),
                KernelCommandLine = GuestImage.KernelCommandLine(options.Profile),
                MemoryMiB = options.MemoryMiB,
                Cpus = options.Cpus,
                SshPrivateKey = image.SshPrivateKey,
                SshKnownHosts = image.SshKnownHosts,
                AgentTimeout = options.AgentTimeout,
                ExtraArguments = options.ExtraArguments,
                IncomingState = options.IncomingState,
            }, cancellationToken).ConfigureAwait(false);
            return new EmbeddedGuest(image, machine, work, owns, root);
        }
        catch
        {
            if (owns)
            {
                LabPaths.TryDeleteFolder(work);
            }
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Machine.DisposeAsync().ConfigureAwait(false);
        if (_ownsWorkFolder)
        {
            LabPaths.TryDeleteFolder(WorkFolder);
        }
    }
}
