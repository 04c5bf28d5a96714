using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LabKernel.Processes;
using LabKernel.Ssh;

namespace LabKernel.Tests.Ssh;

/// <summary>
/// A private OpenSSH sshd on 127.0.0.1 for the tests: a spare port, its own ed25519 host key, one client key
/// authorized for the current user, everything in a temp folder removed afterwards. Not a guest: nothing boots.
/// </summary>
public sealed class LocalSshd : IAsyncLifetime
{
    private Process? _process;

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "lab-sshd-" + Guid.NewGuid().ToString("N")[..8]);

    public int Port { get; private set; }

    public string ClientKey => Path.Combine(Folder, "client_key");

    public string KnownHosts => Path.Combine(Folder, "known_hosts");

    public string User { get; } = Environment.UserName;

    public SshTarget Target(string? knownHosts = null, string? key = null, int? port = null) =>
        new("127.0.0.1", port ?? Port, User, key ?? ClientKey, knownHosts ?? KnownHosts);

    /// <summary>A second key pair, authorized nowhere.</summary>
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
        // As the guest image writes it: any host name, since the forwarded port changes.
        await File.WriteAllTextAsync(KnownHosts, $"* {hostPub[0]} {hostPub[1]}\n");
        Port = FreePort();
        var config = Path.Combine(Folder, "sshd_config");
        await File.WriteAllTextAsync(config, string.Join('\n',
            $"Port {Port}", "ListenAddress 127.0.0.1", $"HostKey {hostKey}", $"AuthorizedKeysFile {Path.Combine(Folder, "authorized_keys")}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", "Subsystem sftp internal-sftp", $"PidFile {Path.Combine(Folder, "sshd.pid")}", ""));
        var psi = new ProcessStartInfo(sshd) { UseShellExecute = false };
        foreach (var a in new[] { "-D", "-f", config, "-E", Path.Combine(Folder, "sshd.log") })
        {
            psi.ArgumentList.Add(a);
        }
        _process = Process.Start(psi)!;
        await LabKernel.Host.Poll.UntilAsync(async _ =>
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"sshd exited {_process.ExitCode}: {File.ReadAllText(Path.Combine(Folder, "sshd.log"))}");
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
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
