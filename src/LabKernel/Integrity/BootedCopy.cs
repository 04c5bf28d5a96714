using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Images;

namespace LabKernel.Integrity;

/// <summary>
/// A copy of the embedded guest's disk (a mirror, a backing file after a commit) booted as a second guest, the
/// way the documents check a copy ("create a VM from the mirror image and look"), but without changing the
/// evidence: a throwaway qcow2 overlay on top of the copy takes every write of the boot, and the copy's SHA-256
/// before and after tells whether it stayed untouched.
/// </summary>
public sealed class BootedCopy : IAsyncDisposable
{
    private readonly EmbeddedGuest _guest;
    private readonly string _overlay;
    private readonly string _hashBefore;
    private bool _disposed;

    private BootedCopy(string copy, EmbeddedGuest guest, string overlay, string hashBefore)
    {
        Copy = copy;
        _guest = guest;
        _overlay = overlay;
        _hashBefore = hashBefore;
    }

    /// <summary>The copy being looked at (never written).</summary>
    public string Copy { get; }

    /// <summary>The booted copy's guest agent.</summary>
    public IGuestAgent Agent => _guest.Machine.Agent;

    /// <summary>The booted copy's files, for a <see cref="FileOpsWorkload.VerifyAsync"/>.</summary>
    public IFileView Files => new GuestFileView(Agent);

    /// <summary>From QEMU's start to the copy's agent answering.</summary>
    public TimeSpan? BootToAgent => _guest.Machine.BootToAgent;

    /// <summary>After dispose: whether the copy's bytes are what they were before the boot.</summary>
    public bool? CopyUnchanged { get; private set; }

    /// <summary>Boots <paramref name="copy"/> through a throwaway overlay in <paramref name="workFolder"/> and waits for its agent.</summary>
    public static async Task<BootedCopy> StartAsync(string copy, string workFolder, string name = "copy", CancellationToken cancellationToken = default)
    {
        copy = Path.GetFullPath(copy);
        if (!File.Exists(copy))
        {
            throw new LabUsageException($"no copy to boot at {copy}");
        }
        var format = (await QemuImg.Local.InfoAsync(copy, cancellationToken: cancellationToken).ConfigureAwait(false)).Format;
        var hash = await FileHash.Sha256Async(copy, cancellationToken).ConfigureAwait(false);
        var overlay = Path.Combine(workFolder, $"boot-{Path.GetFileNameWithoutExtension(copy)}-{Guid.NewGuid().ToString("N")[..6]}.qcow2");
        await QemuImg.Local.CreateAsync(overlay, "qcow2", options: new CreateOptions { BackingFile = copy, BackingFormat = format }, cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { RootDisk = overlay, WorkFolder = workFolder, Name = name, MemoryMiB = 512 }, cancellationToken).ConfigureAwait(false);
            return new BootedCopy(copy, guest, overlay, hash);
        }
        catch
        {
            File.Delete(overlay);
            throw;
        }
    }

    /// <summary>Powers the copy's guest off, deletes the throwaway overlay and checks the copy's hash.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _guest.DisposeAsync().ConfigureAwait(false);
        File.Delete(_overlay);
        CopyUnchanged = await FileHash.Sha256Async(Copy, CancellationToken.None).ConfigureAwait(false) == _hashBefore;
    }
}
