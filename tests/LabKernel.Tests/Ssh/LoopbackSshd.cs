using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LabKernel.Processes;
using LabKernel.Ssh;

namespace LabKernel.Tests.Ssh;

/// <summary>
/// A private OpenSSH sshd on 127.0.0.1 for tests: a free port of its own (so tests may each start one, in
/// parallel), a generated ed25519 host key, one client key authorized for the current user, everything in a temp
/// folder removed afterwards. Nothing boots. The unit tests use it as a class fixture; the integration tests
/// (which compile this file too) reach this machine's libvirtd through it as <c>qemu+ssh://</c>.
/// </summary>
public sealed class LoopbackSshd : IAsyncLifetime, IAsyncDisposable
{
    private Process? _process;

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "lab-sshd-" + Guid.NewGuid().ToString("N")[..8]);

    public int Port { get; private set; }

    public string User { get; } = Environment.UserName;

    public string ClientKey => Path.Combine(Folder, "client_key");

    /// <summary>The host key pinned as OpenSSH writes it for a port other than 22: <c>[127.0.0.1]:PORT ssh-ed25519 AAAA...</c>.</summary>
    public string KnownHosts => Path.Combine(Folder, "known_hosts");

    /// <summary>The host key pinned for any host name, as the guest image writes it (<c>* ssh-ed25519 AAAA...</c>).</summary>
    public string AnyHostKnownHosts => Path.Combine(Folder, "known_hosts.any");

    /// <summary>The SHA-256 fingerprint of the host key, as <c>ssh-keygen -l</c> prints it.</summary>
    public string HostKeyFingerprint { get; private set; } = "";

    public string Log => Path.Combine(Folder, "sshd.log");

    /// <summary>An ssh wrapper pinning the generated host key (strict checking, our known_hosts, never ~/.ssh).</summary>
    public string SshCommand => Path.Combine(Folder, "ssh");

    /// <summary>This machine's libvirtd reached through this sshd.</summary>
    /// <remarks>
    /// <c>known_hosts</c> pins the generated host key for the lab's own SSH connection to the host's files
    /// (<c>command</c> does the same for libvirt's ssh).
    /// </remarks>
    public string Uri =>
        $"qemu+ssh://{User}@127.0.0.1:{Port}/system?keyfile={ClientKey}&known_hosts={KnownHosts}&command={SshCommand}&no_tty=1";

    /// <summary>A guest-shell target on this sshd (the any-host pin unless told).</summary>
    public SshTarget Target(string? knownHosts = null, string? key = null, int? port = null) =>
        new("127.0.0.1", port ?? Port, User, key ?? ClientKey, knownHosts ?? AnyHostKnownHosts);

    /// <summary>Options for an <see cref="SshHost"/> on this sshd (the <c>[127.0.0.1]:PORT</c> pin unless told).</summary>
    public SshHostOptions HostOptions(string? knownHosts = null, string? key = null, int? port = null) =>
        new() { Host = "127.0.0.1", Port = port ?? Port, User = User, PrivateKeyFiles = [key ?? ClientKey], KnownHostsFile = knownHosts ?? KnownHosts };

    /// <summary>
    /// A command line sshd is started through (its arguments then follow), for an sshd that must run somewhere else:
    /// the second hypervisor starts it inside its own mount namespace. Empty: sshd itself.
    /// </summary>
    public IReadOnlyList<string> Launcher { get; init; } = [];

    /// <summary>Starts one (for tests that own theirs; dispose it), through <paramref name="launcher"/> when given (<see cref="Launcher"/>).</summary>
    public static async Task<LoopbackSshd> StartAsync(IReadOnlyList<string>? launcher = null)
    {
        var sshd = new LoopbackSshd { Launcher = launcher ?? [] };
        try
        {
            await sshd.InitializeAsync();
        }
        catch
        {
            await sshd.DisposeAsync();
            throw;
        }
        return sshd;
    }

    /// <summary>A second key pair (authorized nowhere, pinned nowhere), made once per name.</summary>
    public async Task<string> OtherKeyAsync(string name)
    {
        var path = Path.Combine(Folder, name);
        if (!File.Exists(path))
        {
            await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path]);
        }
        return path;
    }

    public async Task InitializeAsync()
    {
        var sshd = File.Exists("/usr/sbin/sshd") ? "/usr/sbin/sshd"
            : throw new InvalidOperationException("the SSH tests need OpenSSH's sshd: apt-get install openssh-server");
        Directory.CreateDirectory(Folder);
        Directory.CreateDirectory("/run/sshd"); // privilege separation directory, normally made by systemd
        var hostKey = Path.Combine(Folder, "host_key");
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", ClientKey]);
        File.Copy(ClientKey + ".pub", Path.Combine(Folder, "authorized_keys"));
        var hostPub = (await File.ReadAllTextAsync(hostKey + ".pub")).Trim().Split(' ');
        HostKeyFingerprint = PinnedHostKey.FingerprintOf(Convert.FromBase64String(hostPub[1]));
        await File.WriteAllTextAsync(AnyHostKnownHosts, $"* {hostPub[0]} {hostPub[1]}\n");
        await File.WriteAllTextAsync(SshCommand,
            $"#!/bin/sh\nexec /usr/bin/ssh -F none -o UserKnownHostsFile={KnownHosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \"$@\"\n");
        File.SetUnixFileMode(SshCommand, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // A free port can be taken between asking and binding (tests start sshds in parallel): then try another.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePort();
            await File.WriteAllTextAsync(KnownHosts, $"[127.0.0.1]:{Port} {hostPub[0]} {hostPub[1]}\n");
            var config = Path.Combine(Folder, "sshd_config");
            await File.WriteAllTextAsync(config, string.Join('\n',
                $"Port {Port}", "ListenAddress 127.0.0.1", $"HostKey {hostKey}", $"AuthorizedKeysFile {Path.Combine(Folder, "authorized_keys")}",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
                "StrictModes no", "Subsystem sftp internal-sftp", $"PidFile {Path.Combine(Folder, "sshd.pid")}", ""));
            var psi = new ProcessStartInfo(Launcher.Count > 0 ? Launcher[0] : sshd) { UseShellExecute = false };
            foreach (var a in Launcher.Skip(1).Concat(Launcher.Count > 0 ? [sshd] : []).Concat(["-D", "-f", config, "-E", Log]))
            {
                psi.ArgumentList.Add(a);
            }
            _process = Process.Start(psi)!;
            try
            {
                await LabKernel.Host.Poll.UntilAsync(async _ =>
                {
                    if (_process.HasExited)
                    {
                        throw new InvalidOperationException($"sshd exited {_process.ExitCode}: {File.ReadAllText(Log)}");
                    }
                    try
                    {
                        using var tcp = new TcpClient();
                        await tcp.ConnectAsync(IPAddress.Loopback, Port);
                        return (true, "");
                    }
                    catch (SocketException e)
                    {
                        return (false, e.Message);
                    }
                }, $"sshd to listen on 127.0.0.1:{Port}", TimeSpan.FromSeconds(10));
                return;
            }
            catch (InvalidOperationException e) when (attempt < 3 && e.Message.Contains("Address already in use", StringComparison.Ordinal))
            {
                _process.Dispose();
                _process = null;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
