using LabKernel.Host;
using LabKernel.Machines;
using LabKernel.Images;
using LabKernel.Journal;

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

    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;
    public int Cpus { get; init; } = GuestDefaults.Cpus;
    public string Name { get; init; } = "labguest";
    public TimeSpan AgentTimeout { get; init; } = GuestDefaults.AgentTimeout;
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];
    public IProgress<GuestBuildProgress>? BuildProgress { get; init; }

    /// <summary>A saved VM state to start from instead of booting (see <see cref="MachineOptions.IncomingState"/>).</summary>
    public string? IncomingState { get; init; }

    /// <summary>
    /// Start warm from the cached state of this configuration when there is one, and save one after a cold boot
    /// when there is not (<see cref="WarmStates"/>). Applies only to a fresh root chain (<see cref="RootDisk"/> null,
    /// or <see cref="RootChainFresh"/>) and no extra drives; <c>LAB_WARM=0</c> turns it off everywhere.
    /// </summary>
    public bool Warm { get; init; } = true;

    /// <summary>The caller made <see cref="RootDisk"/> just now: empty overlays over the cached base image.</summary>
    public bool RootChainFresh { get; init; }

    /// <summary>The machine's clock for its waits and time limits (<see cref="MachineOptions.Time"/>).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The lab's default guest: the cached Debian image (built on first use) started on QEMU directly, on an overlay
/// so the cached base is never written. Disposing shuts it down and removes the overlay folder it created.
/// </summary>
public sealed class EmbeddedGuest : IAsyncDisposable
{
    private readonly bool _ownsWorkFolder;

    private EmbeddedGuest(GuestImage image, QemuMachine machine, string workFolder, bool ownsWorkFolder, string rootDisk, GuestStart start)
    {
        Image = image;
        Machine = machine;
        WorkFolder = workFolder;
        _ownsWorkFolder = ownsWorkFolder;
        RootDisk = rootDisk;
        Start = start;
    }

    /// <summary>Whether this guest booted or was restored from a saved state, and why.</summary>
    public GuestStart Start { get; }

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
                await QemuImg.Local.CreateAsync(root, "qcow2", options: new CreateOptions { BackingFile = image.BaseImage, BackingFormat = "qcow2" }, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            var machineOptions = MachineOptionsFor(image, options, root);
            var (machine, start) = await StartMachineAsync(image, machineOptions, options, fresh: options.RootDisk is null || options.RootChainFresh, root, cancellationToken).ConfigureAwait(false);
            LabJournal.Current.Begin("guest", $"start {options.Name}").Complete(start.ToString());
            return new EmbeddedGuest(image, machine, work, owns, root, start);
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

    /// <summary>The machine an embedded guest with <paramref name="options"/> runs on, its root disk's top <paramref name="root"/>.</summary>
    internal static MachineOptions MachineOptionsFor(GuestImage image, EmbeddedGuestOptions options, string root) =>
        new()
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
            // vmgenid: a new generation id with every QEMU, so a restored guest whose kernel has the driver reseeds its RNG
            // (Debian's cloud kernel has none: WarmStates.RefreshAsync forces the reseed).
            ExtraArguments = ["-device", "vmgenid,guid=auto", .. options.ExtraArguments],
            IncomingState = options.IncomingState,
            Time = options.Time,
        };

    /// <summary>Warm from a saved state when one matches; otherwise a cold boot, saving a state for next time.</summary>
    private static async Task<(QemuMachine, GuestStart)> StartMachineAsync(GuestImage image, MachineOptions machineOptions, EmbeddedGuestOptions options, bool fresh, string root, CancellationToken cancellationToken)
    {
        var off = !options.Warm ? "warm starts are off for this start"
            : !WarmStates.EnabledByEnvironment ? "LAB_WARM=0"
            : options.IncomingState is not null ? "a saved state to load was given"
            : !fresh ? "the root disk is not a fresh overlay of the guest's image"
            : await WarmStates.WhyNotEmptyAsync(options.ExtraDrives, cancellationToken).ConfigureAwait(false);
        if (off is not null)
        {
            return (await QemuMachine.StartAsync(machineOptions, cancellationToken).ConfigureAwait(false), new GuestStart(false, off));
        }
        var accel = await Accelerator.ChooseAsync(machineOptions.Kernel, cancellationToken).ConfigureAwait(false);
        machineOptions = machineOptions with { Accelerator = accel };
        var description = await WarmStates.DescribeAsync(image, machineOptions, accel, cancellationToken).ConfigureAwait(false);
        var (state, why) = await WarmStates.FindAsync(description, cancellationToken).ConfigureAwait(false);
        // A data disk is part of the state only as an empty disk of its size: the guest saw it blank, and a restore
        // gets a new blank one (checked above). Anything written to it before the save would be lost, so a state is
        // kept only when the drives are still empty after it (checked in SaveAsync).
        if (state is not null)
        {
            var top = await QemuImg.Local.InfoAsync(root, cancellationToken: cancellationToken).ConfigureAwait(false);
            var (backing, backingFormat) = (top.FullBackingFilename ?? top.BackingFilename, top.BackingFormat ?? "qcow2");
            QemuMachine? restored = null;
            try
            {
                await WarmStates.PlaceLayerAsync(state, root, backing ?? throw new LabException($"{root} has no backing file: it is not a fresh overlay of the guest's image"), backingFormat, cancellationToken).ConfigureAwait(false);
                restored = await QemuMachine.StartAsync(machineOptions with { IncomingState = state.StateFile }, cancellationToken).ConfigureAwait(false);
                var offset = await WarmStates.RefreshAsync(restored.Agent, cancellationToken).ConfigureAwait(false);
                return (restored, new GuestStart(true, $"{why}; guest clock set ({offset.TotalMilliseconds:0} ms from the host's), fresh entropy written and the generator reseeded", state.Folder));
            }
            catch (Exception e) when (e is LabException or IOException && !cancellationToken.IsCancellationRequested && backing is not null)
            {
                if (restored is not null)
                {
                    await restored.DisposeAsync().ConfigureAwait(false);
                }
                WarmStates.Discard(state);
                await WarmStates.ResetLayerAsync(root, backing, backingFormat, cancellationToken).ConfigureAwait(false);
                why = $"loading the saved state failed ({e.Message.Split('\n')[0]}), so it was discarded";
            }
        }
        var machine = await QemuMachine.StartAsync(machineOptions, cancellationToken).ConfigureAwait(false);
        try
        {
            var (paused, folder) = await WarmStates.SaveAsync(machine, description, root, options.ExtraDrives, cancellationToken).ConfigureAwait(false);
            return (machine, new GuestStart(false, $"{why}: saved one for the next start (the guest paused {paused.TotalMilliseconds:0} ms)", folder));
        }
        catch (Exception e) when (e is LabException or IOException or UnauthorizedAccessException && !cancellationToken.IsCancellationRequested)
        {
            return (machine, new GuestStart(false, $"{why}; saving a state for the next start failed: {e.Message.Split('\n')[0]}"));
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
