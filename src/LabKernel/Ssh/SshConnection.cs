using System.Net.Sockets;
using System.Text;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace LabKernel.Ssh;

/// <summary>
/// One SSH target as the lab reaches it with SSH.NET, for a guest (<see cref="SshGuestShell"/>) or a hypervisor
/// (<see cref="SshHost"/>): a connection for commands (each a channel on it; several may run at once) and a second
/// one for SFTP, each opened on first use under a lock, reused, and reopened when the server dropped it (a reboot).
/// Key authentication only, the host key checked against the known_hosts pin in <c>HostKeyReceived</c> before
/// anything is authenticated, and each failure one line naming <c>user@host:port</c>.
/// </summary>
internal sealed class SshConnection : IAsyncDisposable
{
    private readonly object _owner;
    private readonly string _host;
    private readonly int _port;
    private readonly string _user;
    private readonly IReadOnlyList<string> _privateKeys;
    private readonly string _knownHostsFile;
    private readonly TimeSpan _connectTimeout;
    private readonly Slot<SshClient> _ssh = new();
    private readonly Slot<SftpClient> _sftp = new();
    private int _opened;
    private bool _disposed;

    /// <param name="name">The target as errors name it, <c>user@host:port</c>.</param>
    /// <param name="host">Host name or address.</param>
    /// <param name="port">TCP port of sshd.</param>
    /// <param name="user">The user to log in as.</param>
    /// <param name="privateKeys">OpenSSH private key files (unencrypted), offered in order.</param>
    /// <param name="knownHostsFile">The known_hosts file the pins come from (named in refusals).</param>
    /// <param name="connectTimeout">How long the TCP connect, key exchange and authentication may take together.</param>
    /// <param name="pinned">The host keys to trust; none: every key is refused, naming its fingerprint.</param>
    /// <param name="owner">What an <see cref="ObjectDisposedException"/> names once this is disposed.</param>
    public SshConnection(string name, string host, int port, string user, IReadOnlyList<string> privateKeys, string knownHostsFile, TimeSpan connectTimeout, IReadOnlyList<PinnedHostKey> pinned, object owner)
    {
        Name = name;
        _host = host;
        _port = port;
        _user = user;
        _privateKeys = privateKeys;
        _knownHostsFile = knownHostsFile;
        _connectTimeout = connectTimeout;
        Pinned = pinned;
        _owner = owner;
    }

    /// <summary>The target, <c>user@host:port</c>.</summary>
    public string Name { get; }

    /// <summary>The host keys the server must present.</summary>
    public IReadOnlyList<PinnedHostKey> Pinned { get; }

    /// <summary>How many connections were opened (commands and SFTP); reuse keeps it at one or two.</summary>
    public int Opened => Volatile.Read(ref _opened);

    /// <summary>The connection for commands, connected (again, if the server dropped it).</summary>
    public Task<SshClient> ClientAsync(CancellationToken cancellationToken) =>
        ConnectedAsync(_ssh, info => new SshClient(info), cancellationToken);

    /// <summary>The SFTP connection, connected (again, if the server dropped it).</summary>
    public Task<SftpClient> SftpAsync(CancellationToken cancellationToken) =>
        ConnectedAsync(_sftp, info => new SftpClient(info), cancellationToken);

    /// <summary>Closes both connections. Commands still running are left to sshd, which ends their sessions.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _ssh.Gate.WaitAsync().ConfigureAwait(false);
        await _sftp.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Close(ref _ssh.Client);
            Close(ref _sftp.Client);
        }
        finally
        {
            _sftp.Gate.Release();
            _ssh.Gate.Release();
        }
    }

    /// <summary>
    /// The connection info for one target. With keys pinned, only their host key algorithms are offered, so a
    /// server with several host keys (rsa, ecdsa, ed25519) presents the pinned one; with none pinned, all are
    /// offered and <see cref="ConnectAsync"/> refuses whatever comes, naming its fingerprint.
    /// </summary>
    private ConnectionInfo Info()
    {
        var keys = new List<PrivateKeyFile>();
        foreach (var path in _privateKeys)
        {
            try
            {
                keys.Add(new PrivateKeyFile(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SshException)
            {
                throw new GuestSshException($"ssh {Name}: cannot read the private key {path}: {e.Message.TrimEnd('.')}", e);
            }
        }
        var info = new ConnectionInfo(_host, _port, _user, new PrivateKeyAuthenticationMethod(_user, [.. keys]))
        {
            Timeout = _connectTimeout,
            Encoding = Encoding.UTF8,
        };
        if (Pinned.Count > 0)
        {
            var allowed = Pinned.SelectMany(k => AlgorithmsFor(k.KeyType)).ToHashSet(StringComparer.Ordinal);
            foreach (var name in info.HostKeyAlgorithms.Keys.Where(n => !allowed.Contains(n)).ToList())
            {
                info.HostKeyAlgorithms.Remove(name);
            }
        }
        return info;
    }

    private async Task<T> ConnectedAsync<T>(Slot<T> slot, Func<ConnectionInfo, T> create, CancellationToken cancellationToken) where T : BaseClient
    {
        if (slot.Client is { IsConnected: true } ready)
        {
            return ready;
        }
        await slot.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, _owner);
            if (slot.Client is { IsConnected: true } c)
            {
                return c;
            }
            Close(ref slot.Client);
            var fresh = create(Info());
            await ConnectAsync(fresh, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _opened);
            slot.Client = fresh;
            return fresh;
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    /// <summary>
    /// Connects <paramref name="client"/>, trusting only a pinned host key. Failures are
    /// <see cref="SshHostKeyMismatchException"/> (with the presented key's fingerprint), <see cref="SshAuthenticationFailedException"/>,
    /// <see cref="SshConnectionRefusedException"/>, another <see cref="GuestSshException"/>, or a
    /// <see cref="LabTimeoutException"/> when the connect timeout passes; the client is disposed on failure.
    /// </summary>
    private async Task ConnectAsync(BaseClient client, CancellationToken cancellationToken)
    {
        string? presented = null;
        client.HostKeyReceived += (_, e) =>
        {
            e.CanTrust = Pinned.Any(k => k.Blob.AsSpan().SequenceEqual(e.HostKey));
            if (!e.CanTrust)
            {
                presented = $"{PinnedHostKey.FingerprintOf(e.HostKey)} ({e.HostKeyName})";
            }
        };
        try
        {
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (presented is not null && e is SshException or SocketException or IOException)
        {
            client.Dispose();
            var why = Pinned.Count == 0
                ? $"is not in {_knownHostsFile}; refusing to connect (if it is that host's key, add it, e.g. ssh-keyscan -p {_port} {_host} >> {_knownHostsFile})"
                : $"is not the one pinned in {_knownHostsFile} ({string.Join(", ", Pinned.Select(k => k.Fingerprint))}); refusing to connect";
            throw new SshHostKeyMismatchException($"ssh {Name}: the server's host key {presented} {why}", presented);
        }
        catch (SshAuthenticationException e)
        {
            client.Dispose();
            throw new SshAuthenticationFailedException($"ssh {Name}: the server refused the key {string.Join(", ", _privateKeys)} ({e.Message.TrimEnd('.')})", e);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            client.Dispose();
            throw new SshConnectionRefusedException($"ssh {Name}: connection refused (no sshd listening on {_host}:{_port})", e);
        }
        catch (Exception e) when (e is SshException or SocketException or IOException or ProxyException)
        {
            client.Dispose();
            throw new GuestSshException($"ssh {Name}: {e.Message.ReplaceLineEndings(" ").TrimEnd('.')}", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw new LabTimeoutException($"ssh {Name} to connect", _connectTimeout);
        }
    }

    /// <summary>Disconnects and disposes a client, ignoring a connection that is already gone.</summary>
    private static void Close<T>(ref T? client) where T : BaseClient
    {
        if (client is null)
        {
            return;
        }
        try
        {
            if (client.IsConnected)
            {
                client.Disconnect();
            }
        }
        catch (Exception e) when (e is SshException or SocketException or IOException or ObjectDisposedException)
        {
        }
        client.Dispose();
        client = null;
    }

    private static IEnumerable<string> AlgorithmsFor(string keyType) =>
        keyType == "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [keyType];

    /// <summary>One lazily connected client and the lock it is (re)connected under.</summary>
    private sealed class Slot<T> where T : BaseClient
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public T? Client;
    }
}
