using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using LabKernel.Processes;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace LabKernel.Ssh;

/// <summary>How one remote command ended: its exit status (128 + the signal's number when a signal ended it), that signal, and how long it ran.</summary>
internal readonly record struct SshExit(int ExitCode, int? Signal, TimeSpan Elapsed);

/// <summary>
/// One SSH target as the lab reaches it with SSH.NET, for a guest (<see cref="SshGuestShell"/>) or a hypervisor
/// (<see cref="SshHost"/>): a connection for commands (each a channel on it; several may run at once) and a second
/// one for SFTP, each opened on first use under a lock, reused, and reopened when the server dropped it (a reboot).
/// Key authentication only, the host key checked against the known_hosts pin in <c>HostKeyReceived</c> before
/// anything is authenticated, and each failure one line naming <c>user@host:port</c>.
/// </summary>
/// <remarks>
/// A command (<see cref="RunAsync"/>) announces its session's process id as the first line of its stderr (sshd makes
/// the session a process group of its own, and <c>exec</c> keeps the id), so one that outlives its limit, or whose
/// caller gives up, is ended on the remote side by a second command: sshd refuses SSH's <c>signal</c> request for
/// root logins ("session signalling requires privilege separation"), which the lab's logins usually are.
/// </remarks>
internal sealed class SshConnection : IAsyncDisposable
{
    /// <summary>The start of the first stderr line of every command: the session's process id follows.</summary>
    internal const string SessionTag = "lab-session ";

    /// <summary>Ends the process group named by <c>$1</c>: TERM, then KILL if it is still there a second later.</summary>
    internal const string KillScript =
        "kill -s TERM -- -\"$1\" 2>/dev/null || exit 0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1; kill -s 0 -- -\"$1\" 2>/dev/null || exit 0; done; kill -s KILL -- -\"$1\" 2>/dev/null; exit 0";

    /// <summary>The longest first stderr line read as a session line: longer, it is the command's own output.</summary>
    private const int SessionLineLimit = 64;

    private static readonly Dictionary<string, int> SignalNumbers = new(StringComparer.Ordinal)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["ABRT"] = 6, ["FPE"] = 8, ["KILL"] = 9,
        ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14, ["TERM"] = 15,
    };

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

    /// <summary>
    /// Runs the command line <see cref="CommandLine"/> makes of <paramref name="setup"/> and <paramref name="exec"/>,
    /// handing its stdout and stderr (without the session line) to the readers as they arrive, with
    /// <paramref name="input"/> on its stdin (then EOF; none: <c>/dev/null</c>). At <paramref name="timeout"/>
    /// (null: none), or on cancellation, the channel is closed and the command's process group on the remote side is
    /// ended (<see cref="KillScript"/>); then the timeout is a <see cref="LabTimeoutException"/> naming
    /// <paramref name="awaited"/>, the cancellation an <see cref="OperationCanceledException"/>. A dropped connection
    /// is a one-line <see cref="GuestSshException"/> naming <paramref name="shown"/>.
    /// </summary>
    public Task<SshExit> RunAsync(string setup, string exec, ReadOnlyMemory<byte> input, TimeSpan? timeout, Func<Stream, Task> readOutput, Func<Stream, Task> readError, string shown, string awaited, CancellationToken cancellationToken) =>
        RunCoreAsync(setup, exec, input, timeout, readOutput, readError, shown, awaited, endSession: true, cancellationToken);

    /// <summary>
    /// The line the login shell runs: the session line on stderr, <paramref name="setup"/> (commands of its own,
    /// each ended by <c>;</c>), then <c>exec</c> <paramref name="exec"/>, so the command's exit status and signal are
    /// its own. SSH.NET sends EOF on stdin only after some input: without any, the command reads <c>/dev/null</c>.
    /// </summary>
    internal static string CommandLine(string setup, string exec, bool hasInput) =>
        "echo \"" + SessionTag + "$$\" >&2; " + setup + "exec " + exec + (hasInput ? "" : " </dev/null");

    /// <summary>The session's process id from a first stderr line (<c>lab-session PID</c>); null when the line is not one, or names no process group that may be killed.</summary>
    internal static int? SessionId(string line) =>
        line.StartsWith(SessionTag, StringComparison.Ordinal)
        && int.TryParse(line.AsSpan(SessionTag.Length).TrimEnd('\r'), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
        && pid > 1
            ? pid
            : null;

    /// <summary>The command that ends session <paramref name="pid"/>'s process group: <see cref="KillScript"/> with the id as <c>$1</c>.</summary>
    internal static IReadOnlyList<string> KillCommand(int pid) =>
        ["sh", "-c", KillScript, "sh", pid.ToString(CultureInfo.InvariantCulture)];

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

    private async Task<SshExit> RunCoreAsync(string setup, string exec, ReadOnlyMemory<byte> input, TimeSpan? timeout, Func<Stream, Task> readOutput, Func<Stream, Task> readError, string shown, string awaited, bool endSession, CancellationToken cancellationToken)
    {
        var client = await ClientAsync(cancellationToken).ConfigureAwait(false);
        var sw = Stopwatch.StartNew();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } t)
        {
            limit.CancelAfter(t);
        }
        using var command = client.CreateCommand(CommandLine(setup, exec, !input.IsEmpty), Encoding.UTF8);
        Task run;
        try
        {
            run = command.ExecuteAsync(limit.Token);
        }
        catch (SshConnectionException e)
        {
            throw new GuestSshException($"ssh {Name}: the connection dropped: {e.Message.TrimEnd('.')}", e);
        }
        var stdout = new ChannelStream(command.OutputStream);
        var stderr = new ChannelStream(command.ExtendedOutputStream);
        var outTask = OnOwnThread(() => readOutput(stdout));
        var session = new TaskCompletionSource<int?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var errTask = OnOwnThread(() => ReadErrorAsync(stderr, session, readError));
        try
        {
            // Written beside the run, not before it: a command that exits without reading all of its input closes the
            // channel, and the write would wait for window space that never comes.
            _ = input.IsEmpty ? Task.CompletedTask : WriteInputAsync(command, input, limit.Token);
            await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (endSession)
            {
                await EndSessionAsync(session.Task).ConfigureAwait(false);
            }
            if (cancellationToken.IsCancellationRequested || timeout is not { } limitPassed)
            {
                throw;
            }
            throw new LabTimeoutException(awaited, limitPassed);
        }
        catch (SshConnectionException e)
        {
            throw new GuestSshException($"ssh {Name}: the connection dropped while `{shown}` ran: {e.Message.TrimEnd('.')}", e);
        }
        // The output streams end when the channel closes; a channel cut short may leave them open.
        await Task.WhenAny(Task.WhenAll(outTask, errTask), Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)).ConfigureAwait(false);
        int? signal = command.ExitSignal is { Length: > 0 } name ? SignalNumbers.GetValueOrDefault(name, 0) : null;
        return new SshExit(command.ExitStatus ?? (signal is { } s ? 128 + s : -1), signal, sw.Elapsed);
    }

    /// <summary>
    /// Ends a command's process group on the remote side (<see cref="KillCommand"/>), as the local runner kills the
    /// process tree. Best effort: the command is abandoned either way.
    /// </summary>
    private async Task EndSessionAsync(Task<int?> session)
    {
        if (!session.IsCompletedSuccessfully || session.Result is not { } pid)
        {
            return;
        }
        try
        {
            await RunCoreAsync("", ShellQuote.Join(KillCommand(pid)), ReadOnlyMemory<byte>.Empty, TimeSpan.FromSeconds(15), Drain, Drain,
                "kill", $"the session of {Name} to be ended", endSession: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is LabException or OperationCanceledException or SshException or ObjectDisposedException)
        {
        }

        static Task Drain(Stream s) => s.CopyToAsync(Stream.Null);
    }

    /// <summary>Writes a command's stdin, then EOF (sent when the stream is disposed).</summary>
    private static async Task WriteInputAsync(SshCommand command, ReadOnlyMemory<byte> input, CancellationToken cancellationToken)
    {
        try
        {
            using var stdin = command.CreateInputStream();
            await stdin.WriteAsync(input, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SshException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The command exited (or was ended) without reading its input; its exit status tells the story.
        }
    }

    /// <summary>
    /// Reads the session's process id (the first stderr line), then hands the rest of stderr to <paramref name="readError"/>.
    /// A first line that is not the session's (a login script that writes to stderr) is the command's stderr.
    /// </summary>
    private static async Task ReadErrorAsync(ChannelStream stderr, TaskCompletionSource<int?> session, Func<Stream, Task> readError)
    {
        var first = new byte[SessionLineLimit];
        var read = 0;
        int newline;
        try
        {
            while ((newline = Array.IndexOf(first, (byte)'\n', 0, read)) < 0 && read < first.Length)
            {
                var n = await stderr.ReadAsync(first.AsMemory(read)).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                read += n;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            session.TrySetResult(null);
            return;
        }
        var pid = newline >= 0 ? SessionId(Encoding.UTF8.GetString(first, 0, newline)) : null;
        session.TrySetResult(pid);
        stderr.PutBack(pid is null ? first[..read] : first[(newline + 1)..read]);
        await readError(stderr).ConfigureAwait(false);
    }

    /// <summary>Runs a pump of a channel's output on a thread of its own: its reads block (<see cref="ChannelStream"/>).</summary>
    private static Task OnOwnThread(Func<Task> pump) =>
        Task.Factory.StartNew(pump, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

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

    /// <summary>
    /// A command's stdout or stderr as its pump reads it. SSH.NET's channel streams have no asynchronous read: the
    /// default one blocks a thread-pool thread per stream until data comes, and with a few commands running that
    /// starves a small pool (a 2-core machine's), delaying every continuation by the pool's growth. Here an
    /// asynchronous read is the blocking one, on the pump's own thread (<see cref="OnOwnThread"/>). Bytes put back
    /// (read while looking for the session line) are read first.
    /// </summary>
    private sealed class ChannelStream(Stream channel) : Stream
    {
        private byte[] _back = [];
        private int _at;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void PutBack(byte[] bytes)
        {
            _back = bytes;
            _at = 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_at >= _back.Length)
            {
                return channel.Read(buffer);
            }
            var n = Math.Min(buffer.Length, _back.Length - _at);
            _back.AsSpan(_at, n).CopyTo(buffer);
            _at += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
