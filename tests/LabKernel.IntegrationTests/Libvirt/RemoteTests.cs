using System.Diagnostics;
using LabKernel.GuestAgent;
using LabKernel.Libvirt;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// A private sshd on 127.0.0.1 (spare port, generated host key, a test key authorized for root, all in a temp
/// folder), so <c>qemu+ssh://root@127.0.0.1:PORT/system</c> reaches this machine's libvirtd the way a remote
/// hypervisor is reached.
/// </summary>
internal sealed class LoopbackSshd : IAsyncDisposable
{
    private readonly Process _process;

    private LoopbackSshd(string folder, int port, Process process)
    {
        Folder = folder;
        Port = port;
        _process = process;
    }

    public string Folder { get; }
    public int Port { get; }
    public string ClientKey => Path.Combine(Folder, "client_key");
    public string KnownHosts => Path.Combine(Folder, "known_hosts");
    public string Log => Path.Combine(Folder, "sshd.log");

    /// <summary>An ssh wrapper pinning the generated host key (strict checking, our known_hosts, never ~/.ssh).</summary>
    public string SshCommand => Path.Combine(Folder, "ssh");

    public string Uri =>
        $"qemu+ssh://root@127.0.0.1:{Port}/system?keyfile={ClientKey}&command={SshCommand}&no_tty=1";

    public static async Task<LoopbackSshd> StartAsync(int port = 2299)
    {
        var folder = Path.Combine(Path.GetTempPath(), "labvirt-sshd-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        Directory.CreateDirectory("/run/sshd"); // sshd's privilege-separation directory (systemd normally makes it)
        var hostKey = Path.Combine(folder, "host_key");
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(folder, "client_key")]);
        File.Copy(Path.Combine(folder, "client_key.pub"), Path.Combine(folder, "authorized_keys"));
        var hostPub = (await File.ReadAllTextAsync(hostKey + ".pub")).Trim().Split(' ');
        await File.WriteAllTextAsync(Path.Combine(folder, "known_hosts"), $"[127.0.0.1]:{port} {hostPub[0]} {hostPub[1]}\n");
        await File.WriteAllTextAsync(Path.Combine(folder, "ssh"),
            $"#!/bin/sh\nexec /usr/bin/ssh -F none -o UserKnownHostsFile={Path.Combine(folder, "known_hosts")} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \"$@\"\n");
        File.SetUnixFileMode(Path.Combine(folder, "ssh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = Path.Combine(folder, "sshd_config");
        await File.WriteAllTextAsync(config, string.Join('\n',
            $"Port {port}", "ListenAddress 127.0.0.1", $"HostKey {hostKey}", $"AuthorizedKeysFile {Path.Combine(folder, "authorized_keys")}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            $"PidFile {Path.Combine(folder, "sshd.pid")}", "") );
        var psi = new ProcessStartInfo("/usr/sbin/sshd") { UseShellExecute = false };
        foreach (var a in new[] { "-D", "-f", config, "-E", Path.Combine(folder, "sshd.log") })
        {
            psi.ArgumentList.Add(a);
        }
        var p = Process.Start(psi)!;
        var sshd = new LoopbackSshd(folder, port, p);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (p.HasExited)
            {
                throw new InvalidOperationException($"sshd exited {p.ExitCode}: {File.ReadAllText(sshd.Log)}");
            }
            try
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                return sshd;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(100);
            }
        }
        await sshd.DisposeAsync();
        throw new TimeoutException("sshd did not listen");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The case 1 snapshot scenario over <c>qemu+ssh://</c> to this machine's libvirtd, on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class RemoteTests(LibvirtFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Given_a_qemu_ssh_connection_When_the_live_snapshot_scenario_runs_Then_it_behaves_as_on_the_local_URI()
    {
        await using var sshd = await LoopbackSshd.StartAsync();
        await using var remote = await LibvirtConnection.OpenAsync(sshd.Uri);
        output.WriteLine($"connected to {remote.Uri}, libvirt {remote.GetLibraryVersion()}");
        using var d = await remote.LookupDomainAsync(fx.Domain.Name);
        Assert.Equal(DomainState.Running, await d.GetStateAsync());
        await using var scope = await fx.ScopeAsync(d);
        var start = scope.Start;
        var overlay2 = fx.PathOf("remote-overlay2.qcow2");
        await d.Agent.ExecAsync(["/bin/rm", "-f", NumberFile.GuestPath], new GuestExecOptions { Check = true });
        const int n = 600_000;
        var writer = await d.Agent.StartAsync(NumberFile.WriterArgv(n));
        await d.Snapshots.CreateDiskOnlyAsync("remote-snap", "vda", overlay2);
        var r = await writer.WaitAsync(TimeSpan.FromMinutes(5));
        Assert.True(r.Succeeded, r.StandardError);
        await d.Agent.ExecAsync(["/bin/sync"], new GuestExecOptions { Check = true });

        var check = await d.Block.CheckChainAgreementAsync("vda");
        output.WriteLine($"remote: XML {check.Xml.ToText()}; {check.Agreement.Summary}");
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        Assert.Equal([overlay2, .. start.Chain], check.Xml.Chain);
        Assert.Equal(new NumberPrefix(n, true, "ends after a whole line"), NumberFile.Check(await NumberFile.ReadOfflineAsync(overlay2, fx.Guest.WorkFolder)));
        Assert.True(NumberFile.Check(await NumberFile.ReadOfflineAsync(start.Chain[0], fx.Guest.WorkFolder)).Consistent);
        // The same domain seen through the local URI agrees.
        Assert.Equal(check.Xml.Chain, (await fx.Domain.Block.QueryChainAsync("vda")).Chain);

        var restored = await d.RestoreChainAsync(start, restart: true);
        output.WriteLine(restored.Summary);
        Assert.Equal([overlay2], restored.DeletedImages);
        Assert.Equal(start.Chain, (await fx.Domain.Block.QueryChainAsync("vda")).Chain);
        Assert.Equal(DomainState.Running, await fx.Domain.GetStateAsync());
    }
}
