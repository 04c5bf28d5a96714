using System.Diagnostics;
using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Processes;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace LabKernel.Ssh;

/// <summary>Where and how to reach a guest's sshd: key authentication, the host key pinned by a known_hosts file.</summary>
/// <param name="Host">Host name or address (the embedded guest: 127.0.0.1, its port forwarded by QEMU).</param>
/// <param name="Port">TCP port of sshd.</param>
/// <param name="User">The user to log in as.</param>
/// <param name="PrivateKey">The OpenSSH private key file (unencrypted) authorized for <paramref name="User"/>.</param>
/// <param name="KnownHostsFile">A known_hosts file with the host key(s) the server must present.</param>
public sealed record SshTarget(string Host, int Port, string User, string PrivateKey, string KnownHostsFile)
{
    /// <summary>How long the TCP connect, key exchange and authentication may take together.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public override string ToString() => $"{User}@{Host}:{Port}";
}

/// <summary>
/// Runs guest commands over SSH with SSH.NET: one connection, opened on first use and reused by every command
/// (each command is a channel on it; a key exchange costs seconds on an emulated CPU), reopened when the guest
/// dropped it (a reboot). Key authentication only; the host key the server presents is checked in
/// <c>HostKeyReceived</c> against the known_hosts pin before anything is authenticated (the connection is
/// <see cref="SshHost"/>'s too). sshd hands every command to the user's shell, so the argv is quoted for it and
/// arrives unchanged (spaces, quotes, non-ASCII). A command past its <see cref="GuestExecOptions.Timeout"/>, or
/// cancelled, is ended in the guest: its process group is sent TERM, then KILL a second later if it is still there.
/// Files go over SFTP (<see cref="ReadFileAsync"/>, <see cref="WriteFileAsync"/>) on a second connection.
/// </summary>
public sealed class SshGuestShell : IGuestShell, IAsyncDisposable
{
    private readonly SshConnection _connection;

    public SshGuestShell(SshTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        Target = target;
        var pinned = PinnedHostKeys.Read(target.KnownHostsFile, target.Host, target.Port);
        if (pinned.Count == 0)
        {
            throw new GuestSshException($"{target.KnownHostsFile} pins no host key for {target.Host}:{target.Port}");
        }
        _connection = new SshConnection(target.ToString(), target.Host, target.Port, target.User, [target.PrivateKey], target.KnownHostsFile, target.ConnectTimeout, pinned, this);
    }

    public SshTarget Target { get; }

    /// <summary>How many SSH connections this shell opened (commands and SFTP); reuse keeps it at one or two.</summary>
    public int ConnectionsOpened => _connection.Opened;

    /// <summary>The host keys the server must present (from <see cref="SshTarget.KnownHostsFile"/>).</summary>
    public IReadOnlyList<PinnedHostKey> PinnedKeys => _connection.Pinned;

    public async Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var r = await StreamAsync(argv, stdout, stderr, options, cancellationToken).ConfigureAwait(false);
        var result = r with { StandardOutputBytes = stdout.ToArray(), StandardErrorBytes = stderr.ToArray() };
        return options?.Check == true ? result.EnsureSuccess() : result;
    }

    /// <summary>
    /// Runs <paramref name="argv"/> and copies its stdout and stderr to the given streams as they arrive (for a
    /// terminal, a log). The result carries the exit status and duration; its output bytes are empty.
    /// <see cref="GuestExecOptions.Check"/> is not applied: the caller has the exit code.
    /// </summary>
    public async Task<GuestExecResult> StreamAsync(IReadOnlyList<string> argv, Stream stdout, Stream stderr, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        options ??= new GuestExecOptions();
        var shown = ShellQuote.Join(argv);
        var exec = options.Environment is { Count: > 0 } env ? "env " + ShellQuote.Join(env) + " " + shown : shown;
        var exit = await _connection.RunAsync("", exec, options.Input ?? [], options.Timeout,
            s => s.CopyToAsync(stdout, CancellationToken.None), s => s.CopyToAsync(stderr, CancellationToken.None),
            shown, $"guest command `{shown}` over SSH to exit", cancellationToken).ConfigureAwait(false);
        return new GuestExecResult(argv.ToArray(), exit.ExitCode, [], [], exit.Elapsed, exit.Signal);
    }

    /// <summary>Reads a whole guest file over SFTP.</summary>
    public async Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var sftp = await _connection.SftpAsync(cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        try
        {
            await sftp.DownloadFileAsync(path, buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (SftpPathNotFoundException)
        {
            throw new LabException($"sftp {Target}: no such file in the guest: {path}");
        }
        catch (SftpPermissionDeniedException)
        {
            throw new LabException($"sftp {Target}: permission denied reading {path}");
        }
        return buffer.ToArray();
    }

    /// <summary>Writes (creates or truncates) a guest file over SFTP.</summary>
    public async Task WriteFileAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var sftp = await _connection.SftpAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var file = await sftp.OpenAsync(path, FileMode.Create, FileAccess.Write, cancellationToken).ConfigureAwait(false);
            await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        }
        catch (SftpPathNotFoundException)
        {
            throw new LabException($"sftp {Target}: the folder of {path} does not exist in the guest");
        }
        catch (SftpPermissionDeniedException)
        {
            throw new LabException($"sftp {Target}: permission denied writing {path}");
        }
    }

    /// <summary>
    /// Connects until sshd accepts the lab's key, or the limit passes (sshd starts a little after the agent).
    /// A host key mismatch fails at once: retrying cannot fix it.
    /// </summary>
    public Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Poll.UntilAsync(async ct =>
        {
            try
            {
                await _connection.ClientAsync(ct).ConfigureAwait(false);
                return (true, "");
            }
            catch (GuestSshException e) when (e is not SshHostKeyMismatchException)
            {
                return (false, e.Message);
            }
        }, $"sshd on {Target.Host}:{Target.Port} to accept the lab's key", timeout, Backoff.Default, cancellationToken: cancellationToken);

    /// <summary>Closes both connections. A command still running in the guest is left to sshd, which ends its session.</summary>
    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
