using System.Security.Cryptography;

namespace LabKernel.Host;

/// <summary>Content hashes of host files, read as a stream (images are too big to load whole).</summary>
public static class FileHash
{
    /// <summary>SHA-256 of a file's bytes, upper-case hex: the evidence that an image was not modified.</summary>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        await using var s = File.OpenRead(path);
        return Convert.ToHexString(await SHA256.HashDataAsync(s, cancellationToken).ConfigureAwait(false));
    }
}
