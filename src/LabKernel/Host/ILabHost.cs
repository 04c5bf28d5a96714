using LabKernel.Processes;

namespace LabKernel.Host;

/// <summary>
/// The machine whose files the lab works on: where qemu-img runs, where overlays and run folders are created and
/// deleted, where images are hashed. <see cref="LocalHost"/> is this machine; <c>Ssh.SshHost</c> is a hypervisor
/// reached over SSH (a <c>qemu+ssh://</c> libvirt URI's host). Every path given to a member is a path on that host.
/// </summary>
public interface ILabHost : IAsyncDisposable
{
    /// <summary>How messages name the host: <c>this machine</c>, or <c>user@host:port</c>.</summary>
    string Name { get; }

    /// <summary>True for this machine: its paths are this process's own files.</summary>
    bool IsLocal { get; }

    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="arguments"/> on the host, as
    /// <see cref="ProcessRunner.RunAsync"/> does here: the argv reaches the program unchanged, a
    /// <see cref="ProcessOptions.Timeout"/> ends it with a <see cref="LabTimeoutException"/>,
    /// <see cref="ProcessOptions.Check"/> turns a non-zero exit into a <see cref="ProcessFailedException"/> with the
    /// command line, <see cref="ProcessOptions.StandardInput"/> is written to its stdin, then end of file. A program
    /// that is not installed there is a <see cref="LabException"/> naming it and the host.
    /// </summary>
    Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, ProcessOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>True when <paramref name="path"/> is a regular file (or a link to one).</summary>
    Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>True when <paramref name="path"/> is a folder (or a link to one).</summary>
    Task<bool> DirectoryExistsAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Creates a folder and any missing parents (<c>mkdir -p</c>); an existing folder is left as it is.</summary>
    Task CreateDirectoryAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Deletes a file; a file that does not exist is no error.</summary>
    Task DeleteFileAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Deletes a folder: an empty one, or with everything in it when <paramref name="recursive"/>. An absent folder is no error.</summary>
    Task DeleteDirectoryAsync(string path, bool recursive, CancellationToken cancellationToken = default);

    /// <summary>The size of a file in bytes (its length, not its allocation).</summary>
    Task<long> FileSizeAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// SHA-256 of a file's bytes, lowercase hex, computed on the host (images are read there, never copied here).
    /// </summary>
    Task<string> Sha256Async(string path, CancellationToken cancellationToken = default);

    /// <summary>Reads a whole file: for small files (headers, logs, XML), not images.</summary>
    Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads <paramref name="count"/> bytes from <paramref name="offset"/> (fewer at the end of the file): a partition
    /// table or a superblock out of a raw disk, without moving the disk.
    /// </summary>
    Task<byte[]> ReadRangeAsync(string path, long offset, int count, CancellationToken cancellationToken = default);

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/> on the same host, replacing <paramref name="to"/> if it exists.</summary>
    Task MoveFileAsync(string from, string to, CancellationToken cancellationToken = default);

    /// <summary>Writes a whole file, creating or truncating it; its folder must exist.</summary>
    Task WriteAllBytesAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>Copies <paramref name="localFile"/>, a file of this machine, to <paramref name="path"/> on the host, creating or truncating it; its folder must exist.</summary>
    Task UploadAsync(string localFile, string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates a new private (0700) folder named <paramref name="prefix"/> and a random suffix under
    /// <paramref name="parent"/>, or under the host's <c>/var/tmp</c> (on disk, unlike a tmpfs <c>/tmp</c>: images
    /// go there), and returns its path.
    /// </summary>
    Task<string> CreateTempDirectoryAsync(string prefix, string? parent = null, CancellationToken cancellationToken = default);

    /// <summary>Which of <paramref name="programs"/> (e.g. qemu-img, debugfs, sha256sum) the host cannot run: not on its PATH nor in its sbin folders. Empty when all are there.</summary>
    Task<IReadOnlyList<string>> MissingProgramsAsync(IEnumerable<string> programs, CancellationToken cancellationToken = default);
}
