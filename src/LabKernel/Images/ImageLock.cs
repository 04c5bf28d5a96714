namespace LabKernel.Images;

/// <summary>
/// Guards writers: the lab never writes to an image a running QEMU holds. QEMU locks images with OFD locks on the
/// file; a qemu-img run without force-share (<c>-U</c>) fails with "Failed to get shared \"write\" lock" while a
/// QEMU has the image open for writing.
/// </summary>
public static class ImageLock
{
    /// <summary>
    /// True when another process holds <paramref name="path"/> open for writing. Runs
    /// <c>qemu-img info --output=json PATH</c> without <c>-U</c>.
    /// </summary>
    /// <remarks>
    /// This detects writers (the active layer of a running guest). A QEMU that holds an image read-only as a backing
    /// file still lets this probe through, yet refuses a qemu-img writer such as commit into that base; the writer then
    /// fails with <see cref="ImageInUseException"/> instead.
    /// </remarks>
    public static async Task<bool> IsInUseAsync(string path, string? format = null, CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        try
        {
            await QemuImg.On(host ?? Host.LocalHost.Instance).InfoAsync(path, forceShare: false, format, cancellationToken).ConfigureAwait(false);
            return false;
        }
        catch (ImageInUseException)
        {
            return true;
        }
    }

    /// <summary>
    /// Throws <see cref="ImageInUseException"/> ("image X is in use by a running QEMU; ...") when another process
    /// holds <paramref name="path"/> open for writing. Runs <c>qemu-img info --output=json PATH</c> without <c>-U</c>;
    /// other failures (missing file, unreadable image) raise <see cref="QemuImgException"/>.
    /// </summary>
    public static async Task EnsureNotInUseAsync(string path, string? format = null, CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        await QemuImg.On(host ?? Host.LocalHost.Instance).InfoAsync(path, forceShare: false, format, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether a writer is refused <paramref name="path"/>: <c>qemu-io</c> opens it read-write and quits without a
    /// write command. QEMU's lock on a backing file refuses this (the image is not changed: the open fails); an image
    /// nobody holds is opened and closed, its data untouched. Returns the refusal's first line, or null when the open
    /// went through. Other failures (missing file, not an image) raise <see cref="QemuImgException"/>. On another
    /// <paramref name="host"/> (this machine when null) qemu-io runs there, beside the QEMU that holds the lock.
    /// </summary>
    public static async Task<string?> WriterRefusalAsync(string path, string format = "qcow2", CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        var r = await QemuIo.RunUncheckedAsync(path, ["quit"], format, readOnly: false, forceShare: false, cancellationToken, host).ConfigureAwait(false);
        if (r.Succeeded)
        {
            return null;
        }
        if (ImageInUseException.IsLockFailure(r.StandardError))
        {
            return r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "lock refused";
        }
        throw QemuImg.Failure(QemuIo.Program, r, path);
    }
}
