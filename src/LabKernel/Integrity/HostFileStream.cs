using LabKernel.Host;

namespace LabKernel.Integrity;

/// <summary>
/// A read-only, seekable view of a file on another host (<see cref="ILabHost.ReadRangeAsync"/>), for parsers that
/// read a few structures at known offsets (a partition table, a superblock): each read fetches the 64 KiB chunk it
/// falls in, and the last chunks are kept, so a table's small reads cost one round trip.
/// </summary>
internal sealed class HostFileStream : Stream
{
    private const int ChunkSize = 64 * 1024;
    private readonly ILabHost _host;
    private readonly string _path;
    private readonly Dictionary<long, byte[]> _chunks = [];
    private long _position;

    private HostFileStream(ILabHost host, string path, long length)
    {
        _host = host;
        _path = path;
        Length = length;
    }

    public static async Task<HostFileStream> OpenAsync(ILabHost host, string path, CancellationToken cancellationToken = default) =>
        new(host, path, await host.FileSizeAsync(path, cancellationToken).ConfigureAwait(false));

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length && _position < Length)
        {
            var index = _position / ChunkSize;
            var chunk = Chunk(index);
            var within = (int)(_position - index * ChunkSize);
            var n = Math.Min(buffer.Length - done, chunk.Length - within);
            if (n <= 0)
            {
                break;
            }
            chunk.AsSpan(within, n).CopyTo(buffer[done..]);
            done += n;
            _position += n;
        }
        return done;
    }

    private byte[] Chunk(long index)
    {
        if (!_chunks.TryGetValue(index, out var chunk))
        {
            if (_chunks.Count >= 64)
            {
                _chunks.Clear();
            }
            var offset = index * ChunkSize;
            // Synchronous because Stream's readers are (DiskLayout); the lab calls it off any UI thread.
            chunk = _host.ReadRangeAsync(_path, offset, (int)Math.Min(ChunkSize, Length - offset)).GetAwaiter().GetResult();
            _chunks[index] = chunk;
        }
        return chunk;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => Length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
