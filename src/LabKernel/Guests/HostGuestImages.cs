using System.Text;
using LabKernel.Host;

namespace LabKernel.Guests;

/// <summary>
/// The embedded guest's image on another hypervisor, for the domains the lab makes there: its base image, kernel and
/// initramfs copied once into <c>HOSTFOLDER/.lab-images/IMAGE</c> there (over SFTP), each checked by SHA-256 on arrival
/// and made read-only, and reused by every later run whose local image is the same (a file's <c>.sha256</c> beside it
/// records what was checked). This machine's image is used as it is.
/// </summary>
public static class HostGuestImages
{
    /// <summary>The folder under a run's <c>HostFolder</c> that holds the copies (not a run folder: <c>lab clean</c> leaves it).</summary>
    public const string FolderName = ".lab-images";

    /// <summary>The files a domain of the embedded guest boots from.</summary>
    private static readonly string[] Files = ["base.qcow2", "vmlinuz", "initrd-lean.img", "initrd.img"];

    /// <summary>
    /// <paramref name="image"/> as it is on <paramref name="host"/>: itself for this machine; else the copy under
    /// <paramref name="hostFolder"/> there, made or completed first. A copy that arrives with another SHA-256 than this
    /// machine's file is deleted and a <see cref="LabException"/> says so.
    /// </summary>
    public static async Task<GuestImage> EnsureOnAsync(ILabHost host, GuestImage image, string hostFolder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(image);
        if (host.IsLocal)
        {
            return image;
        }
        if (!hostFolder.StartsWith('/'))
        {
            throw new LabUsageException($"HostFolder '{hostFolder}' is not an absolute path on {host.Name}");
        }
        // Named by the base image's content too: an image is not rebuilt byte for byte, so another build (another
        // machine's, or this one's after a rebuild) goes to a folder of its own and never replaces files that other
        // runs' overlays there are backed by.
        var baseHash = (await WarmStates.ChecksumAsync(image.BaseImage, cancellationToken).ConfigureAwait(false)).ToLowerInvariant();
        var folder = $"{hostFolder.TrimEnd('/')}/{FolderName}/{Path.GetFileName(image.Directory.TrimEnd('/'))}-{baseHash[..12]}";
        await host.CreateDirectoryAsync(folder, cancellationToken).ConfigureAwait(false);
        // A copy a killed run left half-sent (under its own name) goes after an hour.
        await host.RunAsync("find", [folder, "-maxdepth", "1", "-name", "*.partial-*", "-mmin", "+60", "-delete"], cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var name in Files)
        {
            await EnsureFileAsync(host, Path.Combine(image.Directory, name), $"{folder}/{name}", cancellationToken).ConfigureAwait(false);
        }
        return image with { Directory = folder };
    }

    private static async Task EnsureFileAsync(ILabHost host, string local, string there, CancellationToken cancellationToken)
    {
        // Lower-case hex, as sha256sum there prints it.
        var hash = (await WarmStates.ChecksumAsync(local, cancellationToken).ConfigureAwait(false)).ToLowerInvariant();
        var record = there + ".sha256";
        if (await host.FileExistsAsync(there, cancellationToken).ConfigureAwait(false)
            && await host.FileExistsAsync(record, cancellationToken).ConfigureAwait(false)
            && Encoding.ASCII.GetString(await host.ReadAllBytesAsync(record, cancellationToken).ConfigureAwait(false)).Trim() == hash
            && await host.FileSizeAsync(there, cancellationToken).ConfigureAwait(false) == new FileInfo(local).Length)
        {
            // The shared copy is never recorded as a file of this run's (LabFiles): nothing the lab does to its own
            // files (writing, booting read-write, deleting) may touch it, as with the cached image here.
            return;
        }
        // Under a name of its own until checked, so a concurrent run or an interrupted copy never leaves a partial file
        // under the real name; the record goes in first, so a file under the real name always has its record.
        var partial = $"{there}.partial-{Guid.NewGuid().ToString("N")[..8]}";
        LabFiles.MarkCreated(partial, host);
        try
        {
            await host.UploadAsync(local, partial, cancellationToken).ConfigureAwait(false);
            var arrived = await host.Sha256Async(partial, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(arrived, hash, StringComparison.OrdinalIgnoreCase))
            {
                throw new LabException($"the guest image's {Path.GetFileName(local)} arrived on {host.Name} with SHA-256 {arrived}, not {hash}");
            }
            await host.RunAsync("chmod", ["0444", partial], cancellationToken: cancellationToken).ConfigureAwait(false);
            var recordPartial = partial + ".sha256";
            LabFiles.MarkCreated(recordPartial, host);
            await host.WriteAllBytesAsync(recordPartial, Encoding.ASCII.GetBytes(hash + "\n"), cancellationToken).ConfigureAwait(false);
            await host.MoveFileAsync(recordPartial, record, cancellationToken).ConfigureAwait(false);
            // The same bytes as any file already there (the folder is named by content): a run that booted from the
            // one it replaces keeps reading that one.
            await host.MoveFileAsync(partial, there, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await host.DeleteFileAsync(partial, CancellationToken.None).ConfigureAwait(false);
            }
            catch (LabException)
            {
                // The connection is gone: the half-sent copy is deleted by a later run (after an hour); the error that
                // got here is the one to report.
            }
        }
    }
}
