namespace LabKernel.Host;

/// <summary>An exclusive advisory lock on a file (flock through .NET's FileShare.None), held until disposed.</summary>
internal sealed class FileLock : IAsyncDisposable
{
    private static readonly Backoff Retry = new(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1));

    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    public static Task<FileLock> AcquireAsync(string path, TimeSpan timeout, string holder, CancellationToken cancellationToken) =>
        Poll.UntilAsync<FileLock>(_ =>
        {
            try
            {
                return Task.FromResult((true, new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)), ""));
            }
            catch (IOException)
            {
                return Task.FromResult((false, (FileLock)null!, ""));
            }
        }, $"{holder} to release {path}", timeout, Retry, cancellationToken: cancellationToken);

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
