using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Libvirt;

namespace LabKernel.Backends;

/// <summary>Starts an <see cref="ILabGuest"/> from notebook parameters (<c>Backend</c>, <c>Domain</c>).</summary>
public static class LabGuests
{
    /// <summary>
    /// Checks the backend choice (a one-line <see cref="LabUsageException"/> for a wrong one), makes the starting
    /// chain and starts (or, for a user's domain, takes over) the guest, waiting for its agent.
    /// </summary>
    public static async Task<ILabGuest> StartAsync(LabGuestOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var (backend, domain) = CheckChoice(options.Backend, options.Domain);
        if (options.Overlays.Count == 0)
        {
            throw new LabUsageException("the starting chain needs at least one overlay for the lab to write into");
        }
        var filesHere = backend == GuestBackend.Qemu || LabHosts.FilesAreLocal(options.LibvirtUri);
        var host = options.Host ?? (filesHere ? Host.LocalHost.Instance : null);
        foreach (var o in options.Overlays)
        {
            // On another host without a host given yet, the take-over checks there once the connection has one.
            if (host is not null && await host.FileExistsAsync(o, cancellationToken).ConfigureAwait(false))
            {
                throw new OverlayExistsException(Path.GetFullPath(o));
            }
        }
        Directory.CreateDirectory(options.WorkFolder);
        return backend == GuestBackend.Qemu
            ? await QemuLabGuest.StartAsync(options, cancellationToken).ConfigureAwait(false)
            : domain.Length == 0
                ? await LibvirtLabGuest.StartEmbeddedAsync(options, cancellationToken).ConfigureAwait(false)
                : await LibvirtLabGuest.TakeOverAsync(options, domain, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Validates notebook parameters <c>Backend</c> and <c>Domain</c> before anything is made: a one-line
    /// <see cref="LabUsageException"/> for an unknown backend or a domain with <c>Backend=qemu</c>.
    /// Returns them normalised.
    /// </summary>
    public static (GuestBackend Backend, string Domain) CheckChoice(string? backend, string? domain) =>
        CheckChoice((backend ?? "").Trim().ToLowerInvariant() switch
        {
            "qemu" => GuestBackend.Qemu,
            "libvirt" => GuestBackend.Libvirt,
            _ => throw new LabUsageException($"Backend must be qemu or libvirt, not '{backend}'"),
        }, domain);

    /// <summary>As above, for a backend already chosen: a domain only with libvirt. Returns the domain trimmed.</summary>
    public static (GuestBackend Backend, string Domain) CheckChoice(GuestBackend backend, string? domain)
    {
        var d = domain?.Trim() ?? "";
        if (backend == GuestBackend.Qemu && d.Length > 0)
        {
            throw new LabUsageException($"Domain='{d}' names a libvirt domain: run with Backend=libvirt (Backend=qemu always boots the embedded guest)");
        }
        return (backend, d);
    }

    /// <summary>
    /// The checks of <see cref="ILabGuest.BootAgainAsync"/> on every backend: each disk named must be one of the
    /// guest's (a one-line usage error lists them), and each image must be one the lab made, since booting writes it.
    /// Returns the disks' names and the images (none when <paramref name="diskImages"/> is null).
    /// </summary>
    internal static (IReadOnlyList<string> Disks, IReadOnlyDictionary<string, string> Images) CheckBootAgain(ILabGuest guest, IReadOnlyDictionary<string, string>? diskImages)
    {
        var images = diskImages ?? new Dictionary<string, string>();
        string[] known = [guest.Disk, .. guest.DataDisks];
        foreach (var name in images.Keys.Where(k => !known.Contains(k)))
        {
            throw new LabUsageException($"the guest has no disk {name} (it has {string.Join(", ", known)})");
        }
        foreach (var image in images.Values)
        {
            Host.LabFiles.EnsureMayModify(image, "boot the guest on it", host: guest.Host);
        }
        return (known, images);
    }

    /// <summary>
    /// Creates <paramref name="overlays"/> (lowest first) as a qcow2 chain on <paramref name="baseImage"/>, on
    /// <paramref name="host"/>; returns the top. <paramref name="baseFormat"/> is the base's format when known (a user's
    /// definition says it; probing a raw image could read a guest-written header as a format).
    /// </summary>
    internal static async Task<string> CreateChainAsync(Host.ILabHost host, string baseImage, IReadOnlyList<string> overlays, CancellationToken cancellationToken, string? baseFormat = null)
    {
        var qemuImg = QemuImg.On(host);
        var below = baseImage;
        var belowFormat = string.IsNullOrEmpty(baseFormat) ? (await qemuImg.InfoAsync(baseImage, cancellationToken: cancellationToken).ConfigureAwait(false)).Format : baseFormat;
        foreach (var o in overlays)
        {
            var path = Path.GetFullPath(o);
            await qemuImg.CreateAsync(path, "qcow2", options: new CreateOptions { BackingFile = below, BackingFormat = belowFormat }, cancellationToken: cancellationToken).ConfigureAwait(false);
            below = path;
            belowFormat = "qcow2";
        }
        return below;
    }
}
