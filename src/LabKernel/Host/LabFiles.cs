using System.Collections.Concurrent;

namespace LabKernel.Host;

/// <summary>
/// The one guard between the lab and a researcher's data: which files and folders this process's lab created.
/// Every operation that would write or delete an image the caller did not name itself (a commit into "the base",
/// HMP <c>commit all</c>, deleting the layers a revert abandoned, creating an overlay over an existing file) asks
/// here first and is refused for anything else, with a one-line <see cref="ForeignImageException"/>.
/// </summary>
/// <remarks>
/// A file counts as the lab's when the lab created it in this process (<see cref="MarkCreated"/>: qemu-img create,
/// a snapshot overlay, a mirror target) or when it lies in a folder the lab created fresh for a run
/// (<see cref="MarkFolder"/>). The cached guest image was made by an earlier process and is therefore not the
/// lab's to write either: it is read-only for every experiment.
/// </remarks>
public static class LabFiles
{
    private static readonly ConcurrentDictionary<string, byte> Files = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, byte> Folders = new(StringComparer.Ordinal);

    /// <summary>Records a file the lab is creating (or just created).</summary>
    public static void MarkCreated(string path) => Files[Normalize(path)] = 0;

    /// <summary>Records a folder the lab created empty for one run: everything later made inside it is the lab's.</summary>
    public static void MarkFolder(string folder) => Folders[Normalize(folder).TrimEnd('/') + "/"] = 0;

    /// <summary>Forgets a file the lab deleted (a later file of that name is somebody else's until marked again).</summary>
    public static void Forget(string path) => Files.TryRemove(Normalize(path), out _);

    /// <summary>True when the lab created <paramref name="path"/> in this process or it lies in a run folder the lab made.</summary>
    public static bool IsLabMade(string path)
    {
        var p = Normalize(path);
        return Files.ContainsKey(p) || Folders.Keys.Any(f => p.StartsWith(f, StringComparison.Ordinal));
    }

    /// <summary>
    /// Refuses (<see cref="ForeignImageException"/>) to <paramref name="operation"/> <paramref name="path"/> unless
    /// the lab made it or the caller named it explicitly (<paramref name="namedByCaller"/>).
    /// </summary>
    public static void EnsureMayModify(string path, string operation, bool namedByCaller = false)
    {
        if (!namedByCaller && !IsLabMade(path))
        {
            throw new ForeignImageException(Normalize(path), operation);
        }
    }

    /// <summary>
    /// The guard for what libvirt or QEMU will write on the lab's behalf: refuses
    /// (<see cref="ForeignImageException"/>, naming the first such image) unless every one of
    /// <paramref name="paths"/> is the lab's or among <paramref name="namedByCaller"/>. Called with the list of
    /// images an operation writes (for an internal snapshot, every writable qcow2 disk of the domain) before anything
    /// is sent, so a refusal changes nothing.
    /// </summary>
    public static void EnsureMayModifyAll(IEnumerable<string> paths, string operation, IReadOnlyCollection<string>? namedByCaller = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var named = new HashSet<string>((namedByCaller ?? []).Select(Normalize), StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (!named.Contains(Normalize(path)) && !IsLabMade(path))
            {
                throw new ForeignImageException(Normalize(path), operation);
            }
        }
    }

    /// <summary>Deletes <paramref name="path"/> if the lab made it; returns whether it did. Never deletes anything else.</summary>
    public static bool DeleteIfLabMade(string path)
    {
        if (!IsLabMade(path) || !File.Exists(path))
        {
            return false;
        }
        File.Delete(path);
        Forget(path);
        return true;
    }

    /// <summary>Forgets every mark (tests only).</summary>
    internal static void ResetForTests()
    {
        Files.Clear();
        Folders.Clear();
    }

    private static string Normalize(string path) => Path.GetFullPath(path);
}

/// <summary>
/// The lab refused to write or delete a file it did not create and the caller did not name: a researcher's
/// image, another disk of their domain, or the cached guest image. Nothing was changed.
/// </summary>
public sealed class ForeignImageException : LabException
{
    public ForeignImageException(string path, string operation)
        : base($"refusing to {operation}: {path} was not created by the lab (name it explicitly to allow this)")
    {
        Path = path;
        Operation = operation;
    }

    /// <summary>The file the operation would have written or deleted.</summary>
    public string Path { get; }

    /// <summary>What was refused.</summary>
    public string Operation { get; }
}
