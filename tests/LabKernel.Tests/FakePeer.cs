using System.Net.Sockets;
using System.Text;

namespace LabKernel.Tests;

/// <summary>A connected pair of unix sockets: the client side for the code under test, the peer side for the test.</summary>
internal sealed class FakePeer : IAsyncDisposable
{
    private readonly string _dir;
    private readonly StreamReader _reader;

    private FakePeer(string dir, NetworkStream client, NetworkStream peer)
    {
        _dir = dir;
        Client = client;
        Peer = peer;
        _reader = new StreamReader(peer, new UTF8Encoding(false));
    }

    public NetworkStream Client { get; }
    public NetworkStream Peer { get; }

    public static async Task<FakePeer> CreateAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "labfake-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "s");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var server = await accept;
        return new FakePeer(dir, new NetworkStream(client, true), new NetworkStream(server, true));
    }

    public async Task SendAsync(string text) => await SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await Peer.WriteAsync(bytes);
        await Peer.FlushAsync();
    }

    /// <summary>Reads one line the code under test sent (time-limited so a broken test fails instead of hanging).</summary>
    public async Task<string> ReadLineAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException();
    }

    public void ClosePeer() => Peer.Socket.Shutdown(SocketShutdown.Both);

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Peer.DisposeAsync();
        Directory.Delete(_dir, true);
    }
}
