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
        var folder = $"{hostFolder.TrimEnd('/')}/{FolderName}/{Path.GetFileName(image.Directory.TrimEnd('/'))}";
        await host.CreateDirectoryAsync(folder, cancellationToken).ConfigureAwait(false);
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
            LabFiles.MarkCreated(there, host);
            return;
        }
        // Under a name of its own until checked, so a concurrent run or an interrupted copy never leaves a partial file
        // under the real name.
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
            await host.MoveFileAsync(partial, there, cancellationToken).ConfigureAwait(false);
            LabFiles.MarkCreated(there, host);
            await host.WriteAllBytesAsync(partial, Encoding.ASCII.GetBytes(hash + "\n"), cancellationToken).ConfigureAwait(false);
            await host.MoveFileAsync(partial, record, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await host.DeleteFileAsync(partial, CancellationToken.None).ConfigureAwait(false);
        }
    }
}
