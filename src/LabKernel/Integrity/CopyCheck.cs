namespace LabKernel.Integrity;

/// <summary>
/// The file workloads checked in a copy of a disk (a mirror, a committed layer): what was found, how the copy was
/// looked at, and, when it was booted, whether the copy stayed unchanged (SHA-256 before and after).
/// </summary>
/// <param name="Files">Every manifest's paths as found in the copy.</param>
/// <param name="How">"read offline", or how long the boot took and whether the copy stayed unchanged.</param>
/// <param name="CopyUnchanged">Booted: the copy's SHA-256 is what it was before; null when read offline.</param>
public sealed record CopyCheck(FileOpsVerification Files, string How, bool? CopyUnchanged = null)
{
    /// <summary>Every path as the manifests say, and the copy not changed by looking at it.</summary>
    public bool AllOk => Files.AllOk && CopyUnchanged != false;

    /// <summary>One line for a finding.</summary>
    public string Summary => $"{Files.Summary} ({How})";

    public override string ToString() => Summary;

    /// <summary>
    /// Reads <paramref name="image"/> offline (a scratch raw copy in <paramref name="scratchFolder"/>, its journal
    /// replayed there, files read with <c>debugfs</c>), so the image is never written.
    /// </summary>
    public static async Task<CopyCheck> OfflineAsync(string image, string scratchFolder, IEnumerable<FileOpsWorkload> workloads, CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        await using var reader = await OfflineLayerReader.OpenAsync(image, scratchFolder, cancellationToken, host).ConfigureAwait(false);
        return new CopyCheck(await FileOpsWorkload.VerifyAllAsync(reader, workloads, cancellationToken).ConfigureAwait(false), "read offline");
    }

    /// <summary>
    /// The documents' check: boots a VM from <paramref name="image"/> (through a throwaway overlay, so the image is
    /// never written; <see cref="BootedCopy"/>) and looks at the files through its agent.
    /// </summary>
    public static async Task<CopyCheck> BootedAsync(string image, string workFolder, string name, IEnumerable<FileOpsWorkload> workloads, CancellationToken cancellationToken = default)
    {
        var booted = await BootedCopy.StartAsync(image, workFolder, name, cancellationToken).ConfigureAwait(false);
        FileOpsVerification files;
        try
        {
            files = await FileOpsWorkload.VerifyAllAsync(booted.Files, workloads, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await booted.DisposeAsync().ConfigureAwait(false);
        }
        var how = $"booted from the copy in {booted.BootToAgent?.TotalSeconds:0.0} s; copy {(booted.CopyUnchanged == true ? "unchanged (SHA-256)" : "CHANGED")}";
        return new CopyCheck(files, how, booted.CopyUnchanged);
    }
}
