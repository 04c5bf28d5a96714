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
/// lab's to write either: it is read-only for every experiment. Paths are paths on a host (<see cref="ILabHost"/>,
/// this machine when none is given): a path the lab made on a remote hypervisor is the lab's there and nowhere else.
/// </remarks>
public static class LabFiles
{
    private static readonly ConcurrentDictionary<string, byte> Files = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, byte> Folders = new(StringComparer.Ordinal);

    /// <summary>Records a file the lab is creating (or just created).</summary>
    public static void MarkCreated(string path, ILabHost? host = null) => Files[Normalize(path, host)] = 0;

    /// <summary>Records a folder the lab created empty for one run: everything later made inside it is the lab's.</summary>
    public static void MarkFolder(string folder, ILabHost? host = null) => Folders[Normalize(folder, host).TrimEnd('/') + "/"] = 0;

    /// <summary>Forgets a file the lab deleted (a later file of that name is somebody else's until marked again).</summary>
    public static void Forget(string path, ILabHost? host = null) => Files.TryRemove(Normalize(path, host), out _);

    /// <summary>True when the lab created <paramref name="path"/> in this process or it lies in a run folder the lab made.</summary>
    public static bool IsLabMade(string path, ILabHost? host = null)
    {
        var p = Normalize(path, host);
        return Files.ContainsKey(p) || Folders.Keys.Any(f => p.StartsWith(f, StringComparison.Ordinal));
    }

    /// <summary>
    /// Refuses (<see cref="ForeignImageException"/>) to <paramref name="operation"/> <paramref name="path"/> unless
    /// the lab made it or the caller named it explicitly (<paramref name="namedByCaller"/>).
    /// </summary>
    public static void EnsureMayModify(string path, string operation, bool namedByCaller = false, ILabHost? host = null)
    {
        if (!namedByCaller && !IsLabMade(path, host))
        {
            throw new ForeignImageException(Normalize(path, host), operation);
        }
    }

    /// <summary>
    /// The guard for what libvirt or QEMU will write on the lab's behalf: refuses
    /// (<see cref="ForeignImageException"/>, naming the first such image) unless every one of
    /// <paramref name="paths"/> is the lab's or among <paramref name="namedByCaller"/>. Called with the list of
    /// images an operation writes (for an internal snapshot, every writable qcow2 disk of the domain) before anything
    /// is sent, so a refusal changes nothing.
    /// </summary>
    public static void EnsureMayModifyAll(IEnumerable<string> paths, string operation, IReadOnlyCollection<string>? namedByCaller = null, ILabHost? host = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var named = new HashSet<string>((namedByCaller ?? []).Select(p => Normalize(p, host)), StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (!named.Contains(Normalize(path, host)) && !IsLabMade(path, host))
            {
                throw new ForeignImageException(Normalize(path, host), operation);
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

    /// <summary>As <see cref="DeleteIfLabMade(string)"/>, for a file on <paramref name="host"/>.</summary>
    public static async Task<bool> DeleteIfLabMadeAsync(string path, ILabHost host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!IsLabMade(path, host) || !await host.FileExistsAsync(path, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }
        await host.DeleteFileAsync(path, cancellationToken).ConfigureAwait(false);
        Forget(path, host);
        return true;
    }

    /// <summary>Forgets every mark (tests only).</summary>
    internal static void ResetForTests()
    {
        Files.Clear();
        Folders.Clear();
    }

    /// <summary>
    /// The key of a path: its full path on this machine; on another host, the host's name, a colon and the path as
    /// the host has it (absolute, since the lab only names remote files by absolute path; never resolved here).
    /// </summary>
    private static string Normalize(string path, ILabHost? host = null)
    {
        if (host is null || host.IsLocal)
        {
            return Path.GetFullPath(path);
        }
        if (!path.StartsWith('/'))
        {
            throw new LabUsageException($"{path} on {host.Name} is not an absolute path: the lab names files on another host by absolute path");
        }
        return $"{host.Name}:{Path.GetFullPath(path)}";
    }
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
