using System.Net.Sockets;
using System.Text;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace LabKernel.Ssh;

/// <summary>
/// How the lab opens an SSH connection with SSH.NET, to a guest (<see cref="SshGuestShell"/>) or a hypervisor
/// (<see cref="SshHost"/>): key authentication only, the host key checked against the known_hosts pin in
/// <c>HostKeyReceived</c> before anything is authenticated, and each failure one line naming <c>user@host:port</c>.
/// </summary>
internal static class SshConnections
{
    /// <summary>
    /// The connection info for one target. With keys pinned, only their host key algorithms are offered, so a
    /// server with several host keys (rsa, ecdsa, ed25519) presents the pinned one; with none pinned, all are
    /// offered and <see cref="ConnectAsync"/> refuses whatever comes, naming its fingerprint.
    /// </summary>
    public static ConnectionInfo Info(string target, string host, int port, string user, IReadOnlyList<string> privateKeys, TimeSpan timeout, IReadOnlyList<PinnedHostKey> pinned)
    {
        var keys = new List<PrivateKeyFile>();
        foreach (var path in privateKeys)
        {
            try
            {
                keys.Add(new PrivateKeyFile(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SshException)
            {
                throw new GuestSshException($"ssh {target}: cannot read the private key {path}: {e.Message.TrimEnd('.')}", e);
            }
        }
        var info = new ConnectionInfo(host, port, user, new PrivateKeyAuthenticationMethod(user, [.. keys]))
        {
            Timeout = timeout,
            Encoding = Encoding.UTF8,
        };
        if (pinned.Count > 0)
        {
            var allowed = pinned.SelectMany(k => AlgorithmsFor(k.KeyType)).ToHashSet(StringComparer.Ordinal);
            foreach (var name in info.HostKeyAlgorithms.Keys.Where(n => !allowed.Contains(n)).ToList())
            {
                info.HostKeyAlgorithms.Remove(name);
            }
        }
        return info;
    }

    /// <summary>
    /// Connects <paramref name="client"/>, trusting only a host key in <paramref name="pinned"/>. Failures are
    /// <see cref="SshHostKeyMismatchException"/> (with the presented key's fingerprint), <see cref="SshAuthenticationFailedException"/>,
    /// <see cref="SshConnectionRefusedException"/>, another <see cref="GuestSshException"/>, or a
    /// <see cref="LabTimeoutException"/> when <paramref name="timeout"/> passes; the client is disposed on failure.
    /// </summary>
    public static async Task ConnectAsync(BaseClient client, string target, IReadOnlyList<PinnedHostKey> pinned, string knownHostsFile, string keys, TimeSpan timeout, CancellationToken cancellationToken)
    {
        string? presented = null;
        var (host, port) = (client.ConnectionInfo.Host, client.ConnectionInfo.Port);
        client.HostKeyReceived += (_, e) =>
        {
            e.CanTrust = pinned.Any(k => k.Blob.AsSpan().SequenceEqual(e.HostKey));
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
            var why = pinned.Count == 0
                ? $"is not in {knownHostsFile}; refusing to connect (if it is that host's key, add it, e.g. ssh-keyscan -p {port} {host} >> {knownHostsFile})"
                : $"is not the one pinned in {knownHostsFile} ({string.Join(", ", pinned.Select(k => k.Fingerprint))}); refusing to connect";
            throw new SshHostKeyMismatchException($"ssh {target}: the server's host key {presented} {why}", presented);
        }
        catch (SshAuthenticationException e)
        {
            client.Dispose();
            throw new SshAuthenticationFailedException($"ssh {target}: the server refused the key {keys} ({e.Message.TrimEnd('.')})", e);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            client.Dispose();
            throw new SshConnectionRefusedException($"ssh {target}: connection refused (no sshd listening on {host}:{port})", e);
        }
        catch (Exception e) when (e is SshException or SocketException or IOException or ProxyException)
        {
            client.Dispose();
            throw new GuestSshException($"ssh {target}: {e.Message.ReplaceLineEndings(" ").TrimEnd('.')}", e);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw new LabTimeoutException($"ssh {target} to connect", timeout);
        }
    }

    /// <summary>Disconnects and disposes a client, ignoring a connection that is already gone.</summary>
    public static void Close<T>(ref T? client) where T : BaseClient
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
}
