using System.Text;
using LabKernel.Host;
using LabKernel.Journal;
using LabKernel.Processes;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace LabKernel.Ssh;

/// <summary>Where and how to reach a hypervisor's sshd for <see cref="SshHost"/>: key authentication, the host key pinned by a known_hosts file.</summary>
public sealed record SshHostOptions
{
    /// <summary>Host name or address of the hypervisor.</summary>
    public required string Host { get; init; }

    /// <summary>TCP port of its sshd.</summary>
    public int Port { get; init; } = 22;

    /// <summary>The user to log in as (the lab creates and deletes image files: usually root, or a user in libvirt's group that owns the images).</summary>
    public string User { get; init; } = "root";

    /// <summary>OpenSSH private key files (unencrypted), offered in order. Default: those of <c>~/.ssh/id_ed25519</c>, <c>id_ecdsa</c>, <c>id_rsa</c> that exist.</summary>
    public IReadOnlyList<string> PrivateKeyFiles { get; init; } = SshHost.DefaultPrivateKeyFiles();

    /// <summary>The OpenSSH known_hosts file that must pin the host's key. Default: <c>~/.ssh/known_hosts</c>.</summary>
    public string KnownHostsFile { get; init; } = SshHost.DefaultKnownHostsFile();

    /// <summary>How long the TCP connect, key exchange and authentication may take together.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public override string ToString() => $"{User}@{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}";
}

/// <summary>
/// A hypervisor reached over SSH (SSH.NET) as an <see cref="ILabHost"/>: the lab's qemu-img runs, files, hashes and
/// folders there instead of on this machine. One SSH connection carries the commands (each a channel; several may
/// run at once) and a second one SFTP, which reads and writes whole files (one call at a time). The host key must
/// be pinned in a known_hosts file; an absent or different key is refused, naming its fingerprint.
/// </summary>
/// <remarks>
/// sshd hands each command to the user's login shell, which must be a POSIX <c>sh</c> (as libvirt's own
/// <c>qemu+ssh</c> transport needs): the argv is quoted with <see cref="ShellQuote"/> and arrives unchanged, and the
/// sbin folders are added to PATH, which a non-interactive session may lack (debugfs, for one, is there). Metadata
/// (exists, size, mkdir, rm, mktemp, sha256sum) is asked of coreutils in one command each, so links are followed
/// and folders made and deleted as System.IO does here.
/// </remarks>
public sealed class SshHost : ILabHost
{
    /// <summary>
    /// Before each command: the sbin folders on PATH, which a non-interactive session may lack (debugfs, for one, is
    /// there). The session's process id comes first (<see cref="SshConnection.CommandLine"/>), so a command is ended
    /// at its limit.
    /// </summary>
    private const string PathSetup = "export PATH=\"$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"; ";

    /// <summary>What the command line prints (alone on stderr, exit 127) when the program is not on the host.</summary>
    private const string NoSuchProgram = "lab: no such program on this host";

    private readonly SemaphoreSlim _sftpGate = new(1, 1);
    private readonly SshConnection _connection;
    private bool _disposed;

    private SshHost(SshHostOptions options, IReadOnlyList<PinnedHostKey> pinned)
    {
        Options = options;
        Name = options.ToString();
        _connection = new SshConnection(Name, options.Host, options.Port, options.User, options.PrivateKeyFiles, options.KnownHostsFile, options.ConnectTimeout, pinned, this);
    }

    /// <summary>How the host was reached.</summary>
    public SshHostOptions Options { get; }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public bool IsLocal => false;

    /// <summary>
    /// Connects to the host's sshd and authenticates with the options' keys, after checking that the host key it
    /// presents is pinned in <see cref="SshHostOptions.KnownHostsFile"/> (plain or hashed entries, for <c>host</c>
    /// on port 22 or <c>[host]:port</c>). Each failure is a one-line <see cref="LabException"/> naming
    /// <c>user@host:port</c>: a key not pinned or not the pinned one (<see cref="SshHostKeyMismatchException"/>, with
    /// its <c>SHA256:</c> fingerprint), connection refused, authentication refused, no key to offer.
    /// </summary>
    public static async Task<SshHost> ConnectAsync(SshHostOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.Host);
        if (options.Port is < 1 or > 65535)
        {
            throw new LabUsageException($"ssh {options}: the port must be 1 to 65535");
        }
        if (options.PrivateKeyFiles.Count == 0)
        {
            throw new LabUsageException($"ssh {options}: no private key to offer: give one (SshHostOptions.PrivateKeyFiles, or keyfile= in the libvirt URI); none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists");
        }
        // No known_hosts file pins nothing: the connection is still made, so the refusal can name the key presented.
        var pinned = File.Exists(options.KnownHostsFile) ? PinnedHostKeys.Read(options.KnownHostsFile, options.Host, options.Port) : [];
        var host = new SshHost(options, pinned);
        try
        {
            await host._connection.ClientAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return host;
    }

    /// <summary>
    /// The SSH options of a libvirt URI whose transport is SSH (<c>qemu+ssh://</c>, <c>qemu+libssh://</c>,
    /// <c>qemu+libssh2://</c>, any driver): its user (else this process's user, as libvirt does), host, port (else
    /// 22), <c>keyfile=</c> (else <see cref="DefaultPrivateKeyFiles"/>) and <c>known_hosts=</c> (else
    /// <c>~/.ssh/known_hosts</c>). Another transport, or no host, is a <see cref="LabUsageException"/>.
    /// </summary>
    public static SshHostOptions OptionsFromLibvirtUri(string uri)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u))
        {
            throw new LabUsageException($"{uri} is not a libvirt URI");
        }
        var transport = u.Scheme.Contains('+', StringComparison.Ordinal) ? u.Scheme[(u.Scheme.IndexOf('+', StringComparison.Ordinal) + 1)..] : "";
        if (transport is not ("ssh" or "libssh" or "libssh2"))
        {
            throw new LabUsageException($"{uri} does not go over SSH (its transport is {(transport.Length == 0 ? "none" : transport)}): the lab reaches a hypervisor's files over SSH only; use qemu+ssh://user@host/system");
        }
        var host = u.Host.Trim('[', ']');
        if (host.Length == 0)
        {
            throw new LabUsageException($"{uri} names no host to reach over SSH");
        }
        return OptionsOf(host, u.Port, u.UserInfo.Length > 0 ? Uri.UnescapeDataString(u.UserInfo.Split(':')[0]) : null, ParseQuery(u.Query));
    }

    /// <summary>
    /// SSH options as libvirt forms them from a URI's parts: <paramref name="user"/> (else this process's user),
    /// <paramref name="port"/> (else 22), the query's <c>keyfile=</c> (else <see cref="DefaultPrivateKeyFiles"/>) and
    /// <c>known_hosts=</c> (else <c>~/.ssh/known_hosts</c>).
    /// </summary>
    internal static SshHostOptions OptionsOf(string host, int port, string? user, IReadOnlyDictionary<string, string> query) => new()
    {
        Host = host,
        Port = port > 0 ? port : 22,
        User = user ?? Environment.UserName,
        PrivateKeyFiles = query.TryGetValue("keyfile", out var key) && key.Length > 0 ? [key] : DefaultPrivateKeyFiles(),
        KnownHostsFile = query.TryGetValue("known_hosts", out var known) && known.Length > 0 ? known : DefaultKnownHostsFile(),
    };

    /// <summary>The private keys OpenSSH and libvirt try by default: <c>~/.ssh/id_ed25519</c>, <c>id_ecdsa</c>, <c>id_rsa</c>, those that exist.</summary>
    public static IReadOnlyList<string> DefaultPrivateKeyFiles()
    {
        var ssh = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");
        return new[] { "id_ed25519", "id_ecdsa", "id_rsa" }.Select(n => Path.Combine(ssh, n)).Where(File.Exists).ToList();
    }

    /// <summary><c>~/.ssh/known_hosts</c>.</summary>
    public static string DefaultKnownHostsFile() =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");

    /// <inheritdoc/>
    /// <remarks>
    /// The login shell runs <c>[cd DIR || exit 1;] command -v PROGRAM || (say so; exit 127); exec [env -u K K=V] PROGRAM ARGS</c>,
    /// so <see cref="ProcessOptions.WorkingDirectory"/> and <see cref="ProcessOptions.Environment"/> apply as here. At
    /// <see cref="ProcessOptions.Timeout"/>, or on cancellation, the channel is closed and the program's process group
    /// on the host is sent TERM, then KILL a second later if it is still there (a second command).
    /// </remarks>
    public async Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, ProcessOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        ArgumentNullException.ThrowIfNull(arguments);
        options ??= new ProcessOptions();
        var args = arguments.ToList();
        var shown = ShellQuote.Join([program, .. args]);
        var setup = new StringBuilder(PathSetup);
        if (options.WorkingDirectory is { Length: > 0 } cwd)
        {
            setup.Append("cd ").Append(ShellQuote.Quote(cwd)).Append(" || exit 1; ");
        }
        // Asked first, so a missing program is told apart from a program that exits 127 itself.
        setup.Append("command -v ").Append(ShellQuote.Quote(program)).Append(" >/dev/null 2>&1 || { echo '").Append(NoSuchProgram).Append("' >&2; exit 127; }; ");
        var exec = new StringBuilder();
        if (options.Environment is { Count: > 0 } env)
        {
            exec.Append("env ");
            foreach (var (k, v) in env)
            {
                exec.Append(v is null ? "-u " + ShellQuote.Quote(k) : ShellQuote.Quote(k + "=" + v)).Append(' ');
            }
        }
        // A program named like an assignment would be one to env: its name is quoted as Join quotes it.
        exec.Append(shown);

        await _connection.ClientAsync(cancellationToken).ConfigureAwait(false);
        var entry = LabJournal.Current.Begin("process", $"ssh {Name} {shown}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        SshExit exit;
        try
        {
            exit = await _connection.RunAsync(setup.ToString(), exec.ToString(), options.StandardInput ?? [], options.Timeout,
                s => ProcessRunner.Pump(new StreamReader(s, Encoding.UTF8), stdout, options.OnOutputLine),
                s => ProcessRunner.Pump(new StreamReader(s, Encoding.UTF8), stderr, options.OnErrorLine),
                shown, $"`{shown}` on {Name} to exit", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or LabTimeoutException)
        {
            entry.Fail("killed");
            throw;
        }
        catch (GuestSshException e)
        {
            entry.Fail(e.InnerException?.Message ?? e.Message);
            throw;
        }
        var result = new ProcessResult(program, args, exit.ExitCode, Read(stdout), Read(stderr), exit.Elapsed);
        if (result.ExitCode == 127 && result.StandardError == NoSuchProgram + "\n")
        {
            entry.Fail("not found");
            throw new LabException($"cannot run {program} on {Name}: it is not on the PATH there (is it installed on that host?)");
        }
        if (result.Succeeded)
        {
            entry.Complete(ProcessRunner.Summarize(result.StandardOutput));
        }
        else
        {
            entry.Fail($"exit {result.ExitCode}: {ProcessRunner.Summarize(result.StandardError)}");
        }
        if (options.Check && !result.Succeeded)
        {
            throw new ProcessFailedException(result);
        }
        return result;
    }

    /// <inheritdoc/>
    public Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken = default) => TestAsync("-f", path, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> DirectoryExistsAsync(string path, CancellationToken cancellationToken = default) => TestAsync("-d", path, cancellationToken);

    /// <inheritdoc/>
    public Task CreateDirectoryAsync(string path, CancellationToken cancellationToken = default) =>
        ShortAsync("mkdir", ["-p", "--", Required(path)], cancellationToken);

    /// <inheritdoc/>
    public Task DeleteFileAsync(string path, CancellationToken cancellationToken = default) =>
        // As File.Delete: a missing file or a folder in the way is not this call's business.
        ShortAsync("sh", ["-c", "test -d \"$1\" || rm -f -- \"$1\"", "sh", Required(path)], cancellationToken);

    /// <inheritdoc/>
    public Task DeleteDirectoryAsync(string path, bool recursive, CancellationToken cancellationToken = default) =>
        ShortAsync("sh", ["-c", recursive ? "test ! -d \"$1\" || rm -rf -- \"$1\"" : "test ! -d \"$1\" || rmdir -- \"$1\"", "sh", Required(path)], cancellationToken);

    /// <inheritdoc/>
    public async Task<long> FileSizeAsync(string path, CancellationToken cancellationToken = default)
    {
        var r = await ShortAsync("stat", ["-L", "-c", "%s", "--", Required(path)], cancellationToken).ConfigureAwait(false);
        return long.TryParse(r.StandardOutput.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size)
            ? size
            : throw new LabException($"stat of {path} on {Name} printed no size: {r.StandardOutput.Trim()}");
    }

    /// <inheritdoc/>
    public async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        // Hashing reads the whole image on the host: minutes for a big one, so no short limit.
        var r = await RunAsync("sha256sum", ["-b", "--", Required(path)], new ProcessOptions { Timeout = TimeSpan.FromHours(2) }, cancellationToken).ConfigureAwait(false);
        // GNU sha256sum starts the line with a backslash when the name holds one or a newline.
        var hex = r.StandardOutput.TrimStart('\\');
        return hex.Length >= 64 && hex[..64].All(char.IsAsciiHexDigit)
            ? hex[..64].ToLowerInvariant()
            : throw new LabException($"sha256sum of {path} on {Name} printed no hash: {r.StandardOutput.Trim()}");
    }

    /// <inheritdoc/>
    public Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) =>
        SftpAsync(path, "reading", async (sftp, ct) =>
        {
            using var buffer = new MemoryStream();
            await sftp.DownloadFileAsync(path, buffer, ct).ConfigureAwait(false);
            return buffer.ToArray();
        }, cancellationToken);

    /// <inheritdoc/>
    public Task<byte[]> ReadRangeAsync(string path, long offset, int count, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return SftpAsync(path, "reading", async (sftp, ct) =>
        {
            using var file = await sftp.OpenAsync(path, FileMode.Open, FileAccess.Read, ct).ConfigureAwait(false);
            return await LocalHost.ReadAtAsync(file, offset, count, ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>Across filesystems <c>mv</c> copies then unlinks: an image's size, so hours, not a short command's minute.</remarks>
    public async Task MoveFileAsync(string from, string to, CancellationToken cancellationToken = default) =>
        await RunAsync("mv", ["-f", "--", from, to], new ProcessOptions { Timeout = TimeSpan.FromHours(2) }, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public Task WriteAllBytesAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) =>
        SftpAsync(path, "writing", async (sftp, ct) =>
        {
            using var file = await sftp.OpenAsync(path, FileMode.Create, FileAccess.Write, ct).ConfigureAwait(false);
            await file.WriteAsync(content, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Over SFTP, its writes pipelined by SSH.NET's upload (not one round trip per block).</remarks>
    public Task UploadAsync(string localFile, string path, CancellationToken cancellationToken = default) =>
        SftpAsync(path, $"writing (from {localFile})", async (sftp, ct) =>
        {
            await using var source = new FileStream(localFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
            await sftp.UploadFileAsync(source, path, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    public async Task<string> CreateTempDirectoryAsync(string prefix, string? parent = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        // mktemp -d makes the folder 0700.
        var r = await ShortAsync("mktemp", ["-d", "-p", parent ?? "/var/tmp", prefix + "XXXXXXXXXX"], cancellationToken).ConfigureAwait(false);
        return r.StandardOutput.TrimEnd('\n');
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> MissingProgramsAsync(IEnumerable<string> programs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(programs);
        var wanted = programs.Distinct(StringComparer.Ordinal).ToList();
        if (wanted.Count == 0)
        {
            return [];
        }
        var r = await ShortAsync("sh", ["-c", "for p do command -v \"$p\" >/dev/null 2>&1 || printf '%s\\n' \"$p\"; done", "sh", .. wanted], cancellationToken).ConfigureAwait(false);
        return r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Closes both connections. Commands still running on the host are left to sshd, which ends their sessions.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _sftpGate.WaitAsync().ConfigureAwait(false);
        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _sftpGate.Release();
        }
    }

    public override string ToString() => Name;

    private static string Read(StringBuilder sink)
    {
        lock (sink)
        {
            return sink.ToString();
        }
    }

    private static string Required(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return path;
    }

    private async Task<bool> TestAsync(string flag, string path, CancellationToken cancellationToken)
    {
        var r = await RunAsync("test", [flag, Required(path)], new ProcessOptions { Timeout = TimeSpan.FromMinutes(1), Check = false }, cancellationToken).ConfigureAwait(false);
        return r.ExitCode switch
        {
            0 => true,
            1 => false,
            _ => throw new ProcessFailedException(r),
        };
    }

    /// <summary>A metadata command: a minute at most, a failure is a <see cref="ProcessFailedException"/> naming it.</summary>
    private Task<ProcessResult> ShortAsync(string program, IReadOnlyList<string> args, CancellationToken cancellationToken) =>
        RunAsync(program, args, new ProcessOptions { Timeout = TimeSpan.FromMinutes(1) }, cancellationToken);

    private async Task<T> SftpAsync<T>(string path, string doing, Func<SftpClient, CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await _sftpGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var entry = LabJournal.Current.Begin("process", $"sftp {Name} {doing} {ShellQuote.Quote(path)}");
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sftp = await _connection.SftpAsync(cancellationToken).ConfigureAwait(false);
            var result = await action(sftp, cancellationToken).ConfigureAwait(false);
            entry.Complete("");
            return result;
        }
        catch (SftpPathNotFoundException e)
        {
            entry.Fail(e.Message);
            throw new LabException($"sftp {Name}: {doing} {path}: no such file or folder");
        }
        catch (SftpPermissionDeniedException e)
        {
            entry.Fail(e.Message);
            throw new LabException($"sftp {Name}: {doing} {path}: permission denied");
        }
        catch (SshException e)
        {
            entry.Fail(e.Message);
            throw new LabException($"sftp {Name}: {doing} {path}: {e.Message.ReplaceLineEndings(" ").TrimEnd('.')}", e);
        }
        finally
        {
            _sftpGate.Release();
        }
    }

    /// <summary>A URI's query as names and values, each unescaped once.</summary>
    internal static Dictionary<string, string> ParseQuery(string query)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            values[key] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
        }
        return values;
    }
}
