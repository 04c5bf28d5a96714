using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Libvirt;
using LabKernel.Processes;
using LabKernel.Ssh;
using LabKernel.Tests.Ssh;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// A second hypervisor on this machine, as unlike this one as a test can make it: a private mount namespace with its
/// own libvirtd (own sockets, state and definitions) and its own sshd, reached only as
/// <c>qemu+ssh://root@127.0.0.1:PORT/system</c> and over SFTP. Its image folder (<see cref="Folder"/>) is a tmpfs
/// inside that namespace; here the same path is an empty read-only mount, so any file operation the lab does locally
/// on a path of that host fails (or finds nothing) instead of silently working. A researcher's two-disk domain is
/// defined on it (<see cref="DefineUsersDomainAsync"/>) with images made there by plain qemu-img, as theirs would be.
/// Its libvirtd also listens for TLS on a loopback port (<see cref="TlsUri"/>: <c>qemu+tls://</c> with a test CA, the
/// files still reached over its sshd through the URI's <c>lab_ssh=</c>).
/// </summary>
public sealed class SecondHost : IAsyncLifetime
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];
    private readonly string _pids = Directory.CreateTempSubdirectory("lab-second-host-pids-").FullName;
    private LoopbackSshd? _sshd;
    private SshHost? _shell;
    private bool _decoyMounted;

    /// <summary>The image folder on the second host; here an empty read-only mount.</summary>
    public string Folder => $"/run/lab-second-host-{_id}";

    /// <summary>The libvirt URI of the second host (keys and pinned host key of the test's sshd).</summary>
    public string Uri => Sshd.Uri;

    public LoopbackSshd Sshd => _sshd ?? throw new InvalidOperationException("the second host is not started");

    private int _tlsPort;

    private string Pki => Path.Combine(_pids, "pki");

    /// <summary>
    /// The second host as a researcher with a TLS libvirtd gives it: <c>qemu+tls://127.0.0.1:PORT/system</c> with the
    /// client's certificates (<c>pkipath=</c>, signed by the test's CA, which the server's is too), and the SSH address
    /// of its files (<c>lab_ssh=</c>, this host's sshd, with its key and pinned host key).
    /// </summary>
    public string TlsUri =>
        $"qemu+tls://127.0.0.1:{_tlsPort}/system?pkipath={Path.Combine(Pki, "client")}&lab_ssh={Sshd.User}@127.0.0.1:{Sshd.Port}&keyfile={Sshd.ClientKey}&known_hosts={Sshd.KnownHosts}";

    /// <summary>The second host's shell and files, for the test's own work there (a researcher's qemu-img, sha256sum).</summary>
    public SshHost Shell => _shell ?? throw new InvalidOperationException("the second host is not started");

    /// <summary>The researcher's domain on the second host (<see cref="DefineUsersDomainAsync"/>).</summary>
    public string DomainName => $"labremote-{_id}";

    /// <summary>Its images, on the second host: root.qcow2 over root-golden.qcow2 over base.qcow2 (a copy of the guest image), data.qcow2 over data-golden.raw.</summary>
    public IReadOnlyList<string> Images => [.. new[] { "root.qcow2", "root-golden.qcow2", "base.qcow2", "data.qcow2", "data-golden.raw" }.Select(f => Path.Combine(Folder, "user", f))];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Folder);
        await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "-o", "ro,size=1m,mode=0755", "lab-second-host-decoy", Folder]);
        _decoyMounted = true;
        await MakePkiAsync();
        await WriteLibvirtdStartAsync();
        var script = Path.Combine(AppContext.BaseDirectory, "Libvirt", "second-host.sh");
        _sshd = await LoopbackSshd.StartAsync(launcher: ["unshare", "-m", "--propagation", "private", "/bin/sh", script, Folder, _pids]);
        _shell = await SshHost.ConnectAsync(Sshd.HostOptions());
        // A TLS port taken between asking and binding stops libvirtd: then it starts again, inside the namespace through
        // its sshd, on another port.
        for (var attempt = 1; File.Exists(Path.Combine(_pids, "libvirtd.failed")); attempt++)
        {
            if (attempt > 3)
            {
                throw new InvalidOperationException($"the second host's libvirtd did not start: {await File.ReadAllTextAsync(Path.Combine(_pids, "libvirtd.failed"))}");
            }
            File.Delete(Path.Combine(_pids, "libvirtd.failed"));
            await WriteLibvirtdStartAsync();
            await RunAsync($"sh {ShellQuote.Quote(Path.Combine(_pids, "start-libvirtd.sh"))} || echo \"libvirtd exited $?\" > {ShellQuote.Quote(Path.Combine(_pids, "libvirtd.failed"))}");
        }
        // Its libvirtd answers once it has made its socket in the namespace, and on its TLS port.
        await WaitForLibvirtdAsync(Uri, "");
        await WaitForLibvirtdAsync(LabHosts.ForLibvirt(TlsUri), " over TLS");
    }

    private static Task WaitForLibvirtdAsync(string uri, string how) =>
        Poll.UntilAsync(async ct =>
        {
            var r = await ProcessRunner.RunAsync("virsh", ["-c", uri, "version"], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, ct);
            return (r.Succeeded, r.StandardError.Trim());
        }, $"the second host's libvirtd to answer{how} on {uri}", TimeSpan.FromSeconds(60));

    /// <summary>
    /// A test CA and, signed by it, the server's certificate (for 127.0.0.1) and the client's, where libvirtd's
    /// configuration and the client's <c>pkipath=</c> name them (EC keys: quick to make).
    /// </summary>
    private async Task MakePkiAsync()
    {
        var client = Path.Combine(Pki, "client");
        Directory.CreateDirectory(client);
        async Task Openssl(params string[] args) => await ProcessRunner.RunAsync("openssl", args, new ProcessOptions { WorkingDirectory = Pki });
        string[] ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        await Openssl(["req", "-x509", .. ecKey, "-keyout", "cakey.pem", "-out", "cacert.pem", "-days", "3", "-subj", "/CN=LabNotebooks test CA"]);
        foreach (var (name, dn, ext) in new[]
        {
            ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"),
            ("client", "/CN=lab client", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"),
        })
        {
            await File.WriteAllTextAsync(Path.Combine(Pki, name + ".ext"), ext);
            await Openssl(["req", .. ecKey, "-keyout", name + "key.pem", "-out", name + ".csr", "-subj", dn]);
            await Openssl(["x509", "-req", "-in", name + ".csr", "-CA", "cacert.pem", "-CAkey", "cakey.pem", "-CAcreateserial", "-days", "3",
                "-extfile", name + ".ext", "-out", name + "cert.pem"]);
        }
        foreach (var f in new[] { "cacert.pem", "clientcert.pem", "clientkey.pem" })
        {
            File.Copy(Path.Combine(Pki, f), Path.Combine(client, f));
        }
    }

    /// <summary>
    /// PIDDIR/start-libvirtd.sh, which starts the second host's libvirtd (second-host.sh, and <see cref="ComeBackAsync"/>):
    /// listening for TLS on a free loopback port with the server's certificate, no authentication beyond the client's
    /// certificate.
    /// </summary>
    private async Task WriteLibvirtdStartAsync()
    {
        _tlsPort = LoopbackSshd.FreePort();
        var conf = Path.Combine(_pids, "libvirtd.conf");
        await File.WriteAllTextAsync(conf, string.Join('\n',
            "listen_tls = 1", "listen_tcp = 0", "listen_addr = \"127.0.0.1\"", $"tls_port = \"{_tlsPort}\"",
            $"key_file = \"{Path.Combine(Pki, "serverkey.pem")}\"", $"cert_file = \"{Path.Combine(Pki, "servercert.pem")}\"",
            $"ca_file = \"{Path.Combine(Pki, "cacert.pem")}\"", "auth_tls = \"none\"",
            // Its warnings and errors where the tests can read them (daemonized, its stderr goes nowhere).
            $"log_outputs = \"3:file:{LibvirtdLog}\"", ""));
        await File.WriteAllTextAsync(Path.Combine(_pids, "start-libvirtd.sh"),
            $"exec libvirtd -d --listen -f {ShellQuote.Quote(conf)} -p {ShellQuote.Quote(Path.Combine(_pids, "libvirtd.pid"))}\n");
    }

    /// <summary>
    /// The hypervisor goes down under its domains: its libvirtd and every QEMU it started are SIGKILLed (its sshd, the
    /// machine itself, stays, so that <see cref="ComeBackAsync"/> can start libvirtd again in the namespace).
    /// </summary>
    public async Task CutOffAsync()
    {
        var pids = new List<int>();
        if (int.TryParse((await File.ReadAllTextAsync(Path.Combine(_pids, "libvirtd.pid"))).Trim(), out var libvirtd))
        {
            pids.Add(libvirtd);
        }
        pids.AddRange(HostProcesses.List().Where(p => p.Name.StartsWith("qemu-system", StringComparison.Ordinal) && p.CommandLine.Contains($"guest={DomainName}", StringComparison.Ordinal)).Select(p => p.Pid));
        await ProcessRunner.RunAsync("kill", ["-KILL", .. pids.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))], new ProcessOptions { Check = false });
    }

    /// <summary>The second host's libvirtd log (warnings and errors), in this machine's folder for the fixture.</summary>
    private string LibvirtdLog => Path.Combine(_pids, "libvirtd.log");

    /// <summary>
    /// Starts the second host's libvirtd again (inside its namespace, through its sshd) and waits for it to answer.
    /// A libvirtd that started and is gone again before answering (seen once in a rehearsal: its socket never
    /// appeared) is started again, and the failure, if it stays, carries the end of its log.
    /// </summary>
    public async Task ComeBackAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            // Its TLS port may have been taken while it was down: then it starts on another one (as at the first start).
            var start = await Shell.RunAsync("/bin/sh", [Path.Combine(_pids, "start-libvirtd.sh")], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(1) });
            if (!start.Succeeded)
            {
                if (attempt == 3)
                {
                    throw new InvalidOperationException($"the second host's libvirtd did not start again: {start.StandardError.Trim()}; its log ends: {LogTail()}");
                }
                await WriteLibvirtdStartAsync();
                continue;
            }
            try
            {
                await WaitForLibvirtdAsync(Uri, " again");
                await WaitForLibvirtdAsync(LabHosts.ForLibvirt(TlsUri), " over TLS again");
                return;
            }
            catch (LabTimeoutException e) when (attempt < 3 && !LibvirtdRunning())
            {
                Console.Error.WriteLine($"second host: libvirtd exited after starting again ({e.Message.Split('\n')[0]}); its log ends: {LogTail()}; starting it again");
                await WriteLibvirtdStartAsync();
            }
            catch (LabTimeoutException e)
            {
                throw new InvalidOperationException($"{e.Message.Split('\n')[0]}; libvirtd {(LibvirtdRunning() ? "runs" : "is gone")}; its log ends: {LogTail()}", e);
            }
        }
    }

    /// <summary>Starts the second host's libvirtd again if it is not running (after a test that cut it off failed early).</summary>
    public async Task ComeBackIfDownAsync()
    {
        if (!LibvirtdRunning())
        {
            await ComeBackAsync();
        }
    }

    /// <summary>
    /// Defines the researcher's domain again, shut off on its own images, when its definition still names a file under
    /// <paramref name="hostFolder"/> (a test that failed before the hand-back): the next tests need it as defined.
    /// </summary>
    public async Task RestoreUsersDomainAsync(LibvirtDomain domain, string hostFolder)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if ((await domain.ListDisksAsync(inactive: true)).Any(d => d.Source.StartsWith(hostFolder + "/", StringComparison.Ordinal)))
        {
            if (await domain.GetStateAsync() != DomainState.ShutOff)
            {
                await domain.DestroyAsync();
            }
            await domain.UndefineAsync();
            await DefineUsersDomainAsync();
        }
    }

    private bool LibvirtdRunning()
    {
        try
        {
            return int.TryParse(File.ReadAllText(Path.Combine(_pids, "libvirtd.pid")).Trim(), out var pid) && File.ReadAllText($"/proc/{pid}/comm").Trim() == "libvirtd";
        }
        catch (IOException)
        {
            return false;
        }
    }

    private string LogTail()
    {
        try
        {
            return string.Join(" | ", File.ReadAllLines(LibvirtdLog).TakeLast(8));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>A shell command on the second host; throws when it fails.</summary>
    public async Task<string> RunAsync(string script) =>
        (await Shell.RunAsync("/bin/sh", ["-c", script], new ProcessOptions { Timeout = TimeSpan.FromMinutes(5) })).StandardOutput;

    /// <summary>
    /// Makes the researcher's images on the second host with plain qemu-img (the guest image copied there, so nothing
    /// of the domain's is read from this machine's cache) and defines the domain there, shut off, with an agent channel
    /// and spare hot-plug slots.
    /// </summary>
    public async Task DefineUsersDomainAsync()
    {
        var image = await GuestImageBuilder.EnsureAsync();
        var user = Path.Combine(Folder, "user");
        // The second host copies the guest image into its own folder (its namespace sees this machine's cache), so
        // the domain's whole chain is files only that host has.
        await RunAsync(string.Join(" && ",
            $"mkdir -p {ShellQuote.Quote(user)}",
            $"cd {ShellQuote.Quote(user)}",
            $"cp --sparse=always {ShellQuote.Quote(image.BaseImage)} base.qcow2",
            "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 root-golden.qcow2",
            "qemu-img create -q -f qcow2 -b root-golden.qcow2 -F qcow2 root.qcow2",
            "qemu-img create -q -f raw data-golden.raw 64M",
            "qemu-io -f raw -c 'write -P 0x5a 0 1M' data-golden.raw >/dev/null",
            "qemu-img create -q -f qcow2 -b data-golden.raw -F raw data.qcow2",
            "qemu-io -f qcow2 -c 'write -P 0xd7 32M 1M' data.qcow2 >/dev/null"));
        var xml = new DomainSpec
        {
            Name = DomainName,
            Kernel = image.Kernel,
            Initrd = image.InitrdFor(GuestProfile.Lean),
            KernelCommandLine = GuestImage.KernelCommandLine(GuestProfile.Lean),
            Disks = [new DomainDiskSpec(Path.Combine(user, "root.qcow2")), new DomainDiskSpec(Path.Combine(user, "data.qcow2"), "vdb")],
            SerialLog = Path.Combine(user, "serial.log"),
            HotPlugSlots = 2,
        }.ToXml();
        await using var connection = await LibvirtConnection.OpenAsync(Uri);
        using var _ = await connection.DefineDomainAsync(xml);
    }

    /// <summary>SHA-256 of each of the researcher's images, computed on the second host.</summary>
    public async Task<Dictionary<string, string>> HashImagesAsync()
    {
        var hashes = new Dictionary<string, string>();
        foreach (var image in Images)
        {
            hashes[image] = await Shell.Sha256Async(image);
        }
        return hashes;
    }

    public async Task DisposeAsync()
    {
        if (_sshd is not null)
        {
            // The domains go first (their QEMUs are the namespace's), then its daemons.
            await ProcessRunner.RunAsync("/bin/sh", ["-c", $"for d in $(virsh -c '{Uri}' list --all --name); do virsh -c '{Uri}' destroy $d; virsh -c '{Uri}' undefine --snapshots-metadata $d; done"],
                new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(2) });
        }
        if (_shell is not null)
        {
            await _shell.DisposeAsync();
        }
        foreach (var daemon in new[] { "libvirtd", "virtlogd" })
        {
            if (File.Exists(Path.Combine(_pids, daemon + ".pid")) && int.TryParse(File.ReadAllText(Path.Combine(_pids, daemon + ".pid")).Trim(), out var pid))
            {
                try
                {
                    using var p = System.Diagnostics.Process.GetProcessById(pid);
                    p.Kill();
                    await p.WaitForExitAsync();
                }
                catch (ArgumentException)
                {
                    // Already gone.
                }
            }
        }
        if (_sshd is not null)
        {
            await _sshd.DisposeAsync();
        }
        if (_decoyMounted)
        {
            await ProcessRunner.RunAsync("umount", [Folder], new ProcessOptions { Check = false });
        }
        LabPaths.TryDeleteFolder(Folder);
        LabPaths.TryDeleteFolder(_pids);
    }

    /// <summary>Defines the researcher's domain there unless it is.</summary>
    public async Task EnsureUsersDomainDefinedAsync()
    {
        await using var connection = await LibvirtConnection.OpenAsync(Uri);
        try
        {
            using var _ = await connection.LookupDomainAsync(DomainName);
        }
        catch (LibvirtDomainNotFoundException)
        {
            await DefineUsersDomainAsync();
        }
    }

    /// <summary>Starts the researcher's domain there (and waits for its agent) unless it runs.</summary>
    public async Task EnsureUsersDomainRunningAsync()
    {
        await using var connection = await LibvirtConnection.OpenAsync(Uri);
        using var domain = await connection.LookupDomainAsync(DomainName);
        if (await domain.GetStateAsync() != DomainState.Running)
        {
            await domain.StartAsync();
            await domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SecondHostCollection : ICollectionFixture<SecondHost>
{
    public const string Name = "a second hypervisor reached over SSH";
}
