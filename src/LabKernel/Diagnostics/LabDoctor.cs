using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Machines;
using LabKernel.Processes;

namespace LabKernel.Diagnostics;

/// <summary>What the lab needs on this machine and whether it is there.</summary>
public static class LabDoctor
{
    public static async Task<IReadOnlyList<DoctorCheck>> CheckAsync(CancellationToken cancellationToken = default)
    {
        var checks = new List<DoctorCheck>
        {
            await VersionAsync("qemu-system-x86_64", ["--version"], true, cancellationToken).ConfigureAwait(false),
            await VersionAsync("qemu-img", ["--version"], true, cancellationToken).ConfigureAwait(false),
            await VersionAsync("fio", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("libvirtd", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("virsh", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("ssh", ["-V"], false, cancellationToken).ConfigureAwait(false),
        };

        var image = GuestImageBuilder.TryGetCached();
        if (image is not null)
        {
            checks.Add(new DoctorCheck("guest image", $"built: {image.Directory}", true, true));
        }
        else
        {
            var canBuild = ProcessRunner.Which("debootstrap") is not null && ProcessRunner.Which("mkfs.ext4") is not null && LabPaths.IsRoot;
            checks.Add(new DoctorCheck("guest image",
                canBuild ? $"not built yet; the first run builds it into {GuestImageBuilder.ImageFolder(GuestImageBuilder.DefaultRecipe)} (about 2 minutes)"
                         : "not built, and cannot be built here (needs root, debootstrap and mkfs.ext4: scripts/setup)",
                canBuild, true));
        }

        try
        {
            var accel = await Accelerator.ChooseAsync(image?.Kernel, cancellationToken).ConfigureAwait(false);
            checks.Add(new DoctorCheck("accelerator", $"{accel.Name}: {accel.Reason}", true, true));
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("accelerator", e.Message, false, true));
        }
        try
        {
            checks.Add(new DoctorCheck("debian mirror", DebianMirror.Find(), true, image is null));
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("debian mirror", e.Message, false, image is null));
        }
        if (image is not null)
        {
            try
            {
                var (warm, why) = await WarmStates.StatusAsync(image, cancellationToken).ConfigureAwait(false);
                checks.Add(new DoctorCheck("warm start", why, warm, false));
            }
            catch (LabException e)
            {
                checks.Add(new DoctorCheck("warm start", e.Message, false, false));
            }
        }
        checks.Add(await OfflineReadsAsync(LocalHost.Instance, null, cancellationToken).ConfigureAwait(false));
        var leftovers = await Leftovers.FindAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        checks.Add(new DoctorCheck("leftovers", leftovers.Any ? $"{leftovers.Summary} (lab clean removes them)" : leftovers.Summary, !leftovers.Any, false));
        return checks;
    }

    /// <summary>What each program the lab runs on a hypervisor is for, and the Debian package that has it.</summary>
    private static readonly (string Program, string Package, string For)[] HostPrograms =
    [
        ("qemu-img", "qemu-utils", "overlays, chains, checks"),
        ("debugfs", "e2fsprogs", "reading files out of a layer offline"),
        ("dumpe2fs", "e2fsprogs", "a layer's journal state"),
        ("e2fsck", "e2fsprogs", "replaying and checking a layer's journal"),
        ("sha256sum", "coreutils", "the hand-back evidence"),
        ("dd", "coreutils", "carving a partition out of a layer"),
        ("stat", "coreutils", "read-only checks"),
        ("mktemp", "coreutils", "the run's folder"),
        ("mv", "coreutils", "moving images (notebook 03)"),
        ("chmod", "coreutils", "the run's folder"),
        ("find", "findutils", "half-sent copies of the guest image for the lab's own domains there"),
        ("qemu-io", "qemu-utils", "the writer-lock probe (notebook 05)"),
        ("qemu-storage-daemon", "qemu-system-common", "the NBD server of a storage outage (notebook 03), FUSE views for offline reads"),
        ("findmnt", "util-linux", "which filesystem an image is on (notebook 03)"),
        ("mount", "mount", "a second filesystem to move images to (notebook 03)"),
        ("kill", "procps", "stopping the NBD server"),
    ];

    /// <summary>
    /// What the lab needs on the hypervisor <paramref name="uri"/> names: libvirt answering there, a way to its files
    /// (this machine's own, or SSH with a pinned host key), the programs it runs there (each missing one named with its
    /// package, in one line), and a folder under <paramref name="hostFolder"/> (default <c>/var/tmp/labnotebooks</c>)
    /// it can make and remove.
    /// </summary>
    public static async Task<IReadOnlyList<DoctorCheck>> CheckHostAsync(string uri, string? hostFolder = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        var checks = new List<DoctorCheck>();
        try
        {
            await using var connection = await Libvirt.LibvirtConnection.OpenAsync(uri, cancellationToken).ConfigureAwait(false);
            checks.Add(new DoctorCheck("libvirt", $"{uri}: libvirt {connection.GetLibraryVersion()}", true, true));
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("libvirt", e.Message.Split('\n')[0], false, true));
        }
        ILabHost host;
        try
        {
            host = await Libvirt.LabHosts.ForLibvirtUriAsync(uri, cancellationToken).ConfigureAwait(false);
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("host files", e.Message.Split('\n')[0], false, true));
            return checks;
        }
        await using (host.ConfigureAwait(false))
        {
            checks.Add(new DoctorCheck("host files", host.IsLocal ? "this machine's own" : $"over SSH as {host.Name} (host key pinned)", true, true));
            var missing = await host.MissingProgramsAsync(HostPrograms.Select(p => p.Program), cancellationToken).ConfigureAwait(false);
            foreach (var (program, package, use) in HostPrograms)
            {
                checks.Add(missing.Contains(program)
                    ? new DoctorCheck($"{program} on host", $"missing on {host.Name}, needed for {use}: install {package} there", false, true)
                    : new DoctorCheck($"{program} on host", $"present ({use})", true, true));
            }
            var parent = string.IsNullOrWhiteSpace(hostFolder) ? Experiments.ExperimentRun.DefaultHostFolder : hostFolder.Trim();
            try
            {
                await host.CreateDirectoryAsync(parent, cancellationToken).ConfigureAwait(false);
                var probe = await host.CreateTempDirectoryAsync("doctor-", parent, cancellationToken).ConfigureAwait(false);
                await host.DeleteDirectoryAsync(probe, recursive: false, cancellationToken).ConfigureAwait(false);
                checks.Add(new DoctorCheck("host folder", $"{parent}: the lab can make its run folders there", true, true));
            }
            catch (LabException e)
            {
                checks.Add(new DoctorCheck("host folder", $"{parent}: {e.Message.Split('\n')[0]}", false, true));
            }
            checks.Add(await OfflineReadsAsync(host, await host.DirectoryExistsAsync(parent, cancellationToken).ConfigureAwait(false) ? parent : null, cancellationToken).ConfigureAwait(false));
            if (!host.IsLocal)
            {
                try
                {
                    var left = await HostLeftovers.FindAsync(host, uri, parent, cancellationToken).ConfigureAwait(false);
                    var free = left.Runs.Count(r => !r.Kept && r.UsedBy is null || r.HandBack is not null);
                    checks.Add(new DoctorCheck("leftovers on host", free == 0 ? left.Summary : $"{left.Summary} (lab clean --uri removes them)", free == 0, false));
                }
                catch (LabException e)
                {
                    checks.Add(new DoctorCheck("leftovers on host", e.Message.Split('\n')[0], false, false));
                }
            }
        }
        return checks;
    }

    /// <summary>Whether offline reads on <paramref name="host"/> get a FUSE view or copy whole layers (not required: both work).</summary>
    private static async Task<DoctorCheck> OfflineReadsAsync(ILabHost host, string? parent, CancellationToken cancellationToken)
    {
        var why = await Integrity.OfflineLayerReader.ProbeFuseAsync(host, parent, cancellationToken).ConfigureAwait(false);
        return why is null
            ? new DoctorCheck("offline reads", $"a FUSE view on {host.Name} (qemu-storage-daemon): only the blocks read", true, false)
            : new DoctorCheck("offline reads", $"no FUSE view on {host.Name} ({why}): each read copies the whole layer", false, false);
    }

    private static async Task<DoctorCheck> VersionAsync(string program, string[] args, bool required, CancellationToken cancellationToken)
    {
        var path = ProcessRunner.Which(program);
        if (path is null)
        {
            return new DoctorCheck(program, "missing (scripts/setup installs it)", false, required);
        }
        try
        {
            var r = await ProcessRunner.RunAsync(path, args, new ProcessOptions { Timeout = TimeSpan.FromSeconds(20), Check = false }, cancellationToken).ConfigureAwait(false);
            var text = (r.StandardOutput + r.StandardError).Trim().Split('\n')[0].Trim();
            return new DoctorCheck(program, text, r.Succeeded, required);
        }
        catch (LabException e)
        {
            return new DoctorCheck(program, e.Message, false, required);
        }
    }
}
