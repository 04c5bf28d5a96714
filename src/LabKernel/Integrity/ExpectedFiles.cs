using System.Security.Cryptography;

namespace LabKernel.Integrity;

/// <summary>
/// Files a view of a disk must hold with known contents (notebook 05's changes: files of random bytes whose SHA-256
/// the guest printed when it wrote them), checked in a booted copy or an offline read of a layer.
/// </summary>
public static class ExpectedFiles
{
    /// <summary>
    /// The paths of <paramref name="paths"/> that <paramref name="view"/> lacks, in order: absent, or holding bytes whose
    /// SHA-256 (lower-case hex, as <c>sha256sum</c> prints it) is not <paramref name="sha256ByPath"/>'s. Empty when it
    /// holds them all. A layer that lost a change, or holds one with a byte changed, names it.
    /// </summary>
    public static async Task<IReadOnlyList<string>> LackingAsync(IFileView view, IReadOnlyDictionary<string, string> sha256ByPath, IEnumerable<string> paths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(sha256ByPath);
        ArgumentNullException.ThrowIfNull(paths);
        var lacking = new List<string>();
        foreach (var p in paths)
        {
            if (!await view.ExistsAsync(p, cancellationToken).ConfigureAwait(false)
                || Convert.ToHexStringLower(SHA256.HashData(await view.ReadFileAsync(p, cancellationToken).ConfigureAwait(false))) != sha256ByPath[p])
            {
                lacking.Add(p);
            }
        }
        return lacking;
    }
}
