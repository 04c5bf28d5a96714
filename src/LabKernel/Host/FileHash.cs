using System.Security.Cryptography;

namespace LabKernel.Host;

/// <summary>Content hashes of host files, read as a stream (images are too big to load whole).</summary>
public static class FileHash
{
    /// <summary>
    /// SHA-256 of a file's bytes, lower-case hex as <c>sha256sum</c> prints it (so a hash taken here and one taken on
    /// another host over SSH compare equal): the evidence that an image was not modified.
    /// </summary>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        await using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(s, cancellationToken).ConfigureAwait(false));
    }
}
