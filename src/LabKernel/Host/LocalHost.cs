using LabKernel.Processes;

namespace LabKernel.Host;

/// <summary>
/// This machine as an <see cref="ILabHost"/>: files through System.IO, programs through <see cref="ProcessRunner"/>,
/// hashes through <see cref="FileHash"/>. Stateless; <see cref="Instance"/> is the one there is.
/// </summary>
public sealed class LocalHost : ILabHost
{
    private LocalHost()
    {
    }

    /// <summary>This machine.</summary>
    public static LocalHost Instance { get; } = new();

    /// <inheritdoc/>
    public string Name => "this machine";

    /// <inheritdoc/>
    public bool IsLocal => true;

    /// <inheritdoc/>
    public Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, ProcessOptions? options = null, CancellationToken cancellationToken = default) =>
        ProcessRunner.RunAsync(program, arguments, options, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(File.Exists(path));

    /// <inheritdoc/>
    public Task<bool> DirectoryExistsAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(Directory.Exists(path));

    /// <inheritdoc/>
    public Task CreateDirectoryAsync(string path, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(path);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task DeleteFileAsync(string path, CancellationToken cancellationToken = default)
    {
        // File.Delete ignores a missing file but not a missing folder; both mean "not there".
        if (File.Exists(path))
        {
            File.Delete(path);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task DeleteDirectoryAsync(string path, bool recursive, CancellationToken cancellationToken = default)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<long> FileSizeAsync(string path, CancellationToken cancellationToken = default) => Task.FromResult(new FileInfo(path).Length);

    /// <inheritdoc/>
    public async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default) =>
        await FileHash.Sha256Async(path, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) => File.ReadAllBytesAsync(path, cancellationToken);

    /// <inheritdoc/>
    public async Task<byte[]> ReadRangeAsync(string path, long offset, int count, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, useAsync: true);
        return await ReadAtAsync(file, offset, count, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task MoveFileAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        File.Move(from, to, overwrite: true);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public async Task WriteAllBytesAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, useAsync: true);
        await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task UploadAsync(string localFile, string path, CancellationToken cancellationToken = default)
    {
        await using var source = new FileStream(localFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        await using var target = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true);
        await source.CopyToAsync(target, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<string> CreateTempDirectoryAsync(string prefix, string? parent = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var path = Path.Combine(parent ?? "/var/tmp", prefix + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(path, Private.Folder);
        return Task.FromResult(path);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> MissingProgramsAsync(IEnumerable<string> programs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(programs);
        IReadOnlyList<string> missing = programs.Distinct(StringComparer.Ordinal).Where(p => ProcessRunner.Which(p) is null).ToList();
        return Task.FromResult(missing);
    }

    /// <summary>
    /// Up to <paramref name="count"/> bytes of <paramref name="stream"/> from <paramref name="offset"/> (fewer at its end):
    /// <see cref="ILabHost.ReadRangeAsync"/> for both hosts, over a local file or an SFTP one.
    /// </summary>
    internal static async Task<byte[]> ReadAtAsync(Stream stream, long offset, int count, CancellationToken cancellationToken)
    {
        stream.Position = offset;
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(done), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }
            done += n;
        }
        return done == count ? buffer : buffer[..done];
    }

    /// <summary>Nothing to release.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public override string ToString() => Name;
}
