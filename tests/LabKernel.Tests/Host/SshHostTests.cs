using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Libvirt;
using LabKernel.Processes;
using LabKernel.Ssh;
using LabKernel.Tests.Ssh;

namespace LabKernel.Tests.Host;

/// <summary>What only <see cref="SshHost"/> has: the pinned host key, connection failures, libvirt URIs.</summary>
public sealed class SshHostTests(LoopbackSshd sshd) : IClassFixture<LoopbackSshd>
{
    [Fact]
    public async Task Given_a_known_hosts_without_the_host_When_connecting_Then_it_is_refused_naming_the_host_and_the_keys_fingerprint()
    {
        var other = await sshd.OtherKeyAsync("elsewhere_host_key");
        var pub = (await File.ReadAllTextAsync(other + ".pub")).Trim().Split(' ');
        var knownHosts = Path.Combine(sshd.Folder, "known_hosts.elsewhere");
        await File.WriteAllTextAsync(knownHosts, $"[10.9.8.7]:{sshd.Port} {pub[0]} {pub[1]}\n[127.0.0.1]:{sshd.Port + 1} {pub[0]} {pub[1]}\n");

        var e = await Assert.ThrowsAsync<SshHostKeyMismatchException>(() => SshHost.ConnectAsync(sshd.HostOptions(knownHosts: knownHosts)));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"{sshd.User}@127.0.0.1:{sshd.Port}", e.Message);
        Assert.Contains(sshd.HostKeyFingerprint, e.Message);
        Assert.Contains($"is not in {knownHosts}", e.Message);
        Assert.Equal($"{sshd.HostKeyFingerprint} (ssh-ed25519)", e.PresentedFingerprint);
    }

    [Fact]
    public async Task Given_no_known_hosts_file_When_connecting_Then_it_is_refused_naming_the_keys_fingerprint()
    {
        var e = await Assert.ThrowsAsync<SshHostKeyMismatchException>(() => SshHost.ConnectAsync(sshd.HostOptions(knownHosts: Path.Combine(sshd.Folder, "no-such-file"))));

        Assert.Contains(sshd.HostKeyFingerprint, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Given_a_known_hosts_pinning_another_key_for_the_host_When_connecting_Then_it_is_refused_naming_both_fingerprints()
    {
        var other = await sshd.OtherKeyAsync("impostor_host_key");
        var pub = (await File.ReadAllTextAsync(other + ".pub")).Trim().Split(' ');
        var knownHosts = Path.Combine(sshd.Folder, "known_hosts.other");
        await File.WriteAllTextAsync(knownHosts, $"[127.0.0.1]:{sshd.Port} {pub[0]} {pub[1]}\n");

        var e = await Assert.ThrowsAsync<SshHostKeyMismatchException>(() => SshHost.ConnectAsync(sshd.HostOptions(knownHosts: knownHosts)));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"{sshd.User}@127.0.0.1:{sshd.Port}", e.Message);
        Assert.Contains(sshd.HostKeyFingerprint, e.Message);
        Assert.Contains(PinnedHostKey.FingerprintOf(Convert.FromBase64String(pub[1])), e.Message);
        Assert.Contains("not the one pinned", e.Message);
    }

    [Fact]
    public async Task Given_a_hashed_known_hosts_When_connecting_Then_the_hashed_entry_pins_the_host()
    {
        var knownHosts = Path.Combine(sshd.Folder, "known_hosts.hashed");
        File.Copy(sshd.KnownHosts, knownHosts, overwrite: true);
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-H", "-f", knownHosts]);
        Assert.StartsWith("|1|", await File.ReadAllTextAsync(knownHosts), StringComparison.Ordinal);

        await using var host = await SshHost.ConnectAsync(sshd.HostOptions(knownHosts: knownHosts));

        Assert.Equal("ok\n", (await host.RunAsync("echo", ["ok"])).StandardOutput);
        Assert.Empty(PinnedHostKeys.Parse(await File.ReadAllLinesAsync(knownHosts), "127.0.0.1", sshd.Port + 1));
        Assert.Empty(PinnedHostKeys.Parse(await File.ReadAllLinesAsync(knownHosts), "127.0.0.2", sshd.Port));
    }

    [Fact]
    public async Task Given_a_key_the_server_does_not_authorize_When_connecting_Then_authentication_fails_in_one_line_naming_user_host_and_port()
    {
        var unreadable = await Assert.ThrowsAsync<GuestSshException>(() => SshHost.ConnectAsync(sshd.HostOptions(key: sshd.ClientKey + ".nope")));
        Assert.Contains($"ssh {sshd.User}@127.0.0.1:{sshd.Port}: cannot read the private key", unreadable.Message);

        var stranger = await sshd.OtherKeyAsync("stranger_key");
        var refused = await Assert.ThrowsAsync<SshAuthenticationFailedException>(() => SshHost.ConnectAsync(sshd.HostOptions(key: stranger)));

        Assert.DoesNotContain('\n', refused.Message);
        Assert.Contains($"ssh {sshd.User}@127.0.0.1:{sshd.Port}: the server refused the key", refused.Message);
    }

    [Fact]
    public async Task Given_no_sshd_on_the_port_When_connecting_Then_connection_refused_names_user_host_and_port()
    {
        var port = LoopbackSshd.FreePort();

        var e = await Assert.ThrowsAsync<SshConnectionRefusedException>(() => SshHost.ConnectAsync(sshd.HostOptions(port: port)));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"{sshd.User}@127.0.0.1:{port}", e.Message);
        Assert.Contains("connection refused", e.Message);
    }

    [Fact]
    public async Task Given_no_private_key_When_connecting_Then_the_usage_error_says_how_to_give_one()
    {
        var e = await Assert.ThrowsAsync<LabUsageException>(() => SshHost.ConnectAsync(sshd.HostOptions() with { PrivateKeyFiles = [] }));

        Assert.Contains("keyfile=", e.Message);
    }

    [Fact]
    public async Task Given_an_ssh_host_When_qemu_img_creates_and_describes_an_image_there_Then_both_run_through_ssh()
    {
        await using var host = await SshHost.ConnectAsync(sshd.HostOptions());
        var folder = await host.CreateTempDirectoryAsync("lab-qemu-img-", sshd.Folder);
        var image = Path.Combine(folder, "disk.qcow2");
        var journal = new LabJournal();

        ImageInfo info;
        using (LabJournal.BeginScope(journal))
        {
            await QemuImg.On(host).CreateAsync(image, "qcow2", 64L << 20);
            info = await QemuImg.On(host).InfoAsync(image);
        }

        Assert.Equal("qcow2", info.Format);
        Assert.Equal(64L << 20, info.VirtualSize);
        Assert.True(await host.FileExistsAsync(image));
        var commands = journal.Entries.Select(e => e.Command).ToList();
        Assert.Contains(commands, c => c.StartsWith($"ssh {host.Name} qemu-img create -f qcow2 ", StringComparison.Ordinal));
        Assert.Contains(commands, c => c.StartsWith($"ssh {host.Name} qemu-img info --output=json", StringComparison.Ordinal));
        Assert.Same(host, QemuImg.On(host).Host);
        Assert.Same(LocalHost.Instance, QemuImg.Local.Host);
    }

    [Theory]
    [InlineData("qemu+ssh://admin@hv.example:2222/system?keyfile=/k/id&known_hosts=/k/kh", "admin", "hv.example", 2222, "/k/id", "/k/kh")]
    [InlineData("qemu+libssh://hv.example/system?known_hosts=/k/kh&keyfile=/k/a%20b", null, "hv.example", 22, "/k/a b", "/k/kh")]
    [InlineData("qemu+libssh2://root@10.0.0.5/system?keyfile=/k/id&no_verify=0", "root", "10.0.0.5", 22, "/k/id", null)]
    [InlineData("qemu+ssh://root@[fd00::5]:23/system?keyfile=/k/id", "root", "fd00::5", 23, "/k/id", null)]
    public void Given_a_libvirt_ssh_uri_When_read_Then_user_host_port_key_and_known_hosts_come_from_it_or_from_libvirts_defaults(
        string uri, string? user, string host, int port, string key, string? knownHosts)
    {
        var o = SshHost.OptionsFromLibvirtUri(uri);

        Assert.Equal(user ?? Environment.UserName, o.User);
        Assert.Equal(host, o.Host);
        Assert.Equal(port, o.Port);
        Assert.Equal([key], o.PrivateKeyFiles);
        Assert.Equal(knownHosts ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts"), o.KnownHostsFile);
    }

    [Fact]
    public void Given_a_libvirt_uri_without_a_key_When_read_Then_the_default_keys_that_exist_are_offered()
    {
        var o = SshHost.OptionsFromLibvirtUri("qemu+ssh://root@hv.example/system");

        Assert.Equal(SshHost.DefaultPrivateKeyFiles(), o.PrivateKeyFiles);
        Assert.All(o.PrivateKeyFiles, k => Assert.True(File.Exists(k)));
        Assert.Equal("root@hv.example:22", o.ToString());
    }

    [Theory]
    [InlineData("qemu+tls://hv.example/system")]
    [InlineData("qemu:///system")]
    [InlineData("qemu+ssh:///system")]
    [InlineData("not a uri")]
    public void Given_a_uri_that_is_not_ssh_to_a_host_When_read_as_ssh_options_Then_it_is_a_usage_error(string uri)
    {
        Assert.Throws<LabUsageException>(() => SshHost.OptionsFromLibvirtUri(uri));
    }

    [Theory]
    [InlineData("qemu:///system")]
    [InlineData("qemu+tcp://127.0.0.1/system")]
    [InlineData("qemu+unix:///system")]
    public async Task Given_a_uri_to_this_machine_without_ssh_When_its_host_is_asked_for_Then_it_is_the_local_host(string uri)
    {
        Assert.Same(LocalHost.Instance, await LabHosts.ForLibvirtUriAsync(uri));
    }

    [Fact]
    public async Task Given_a_tls_uri_to_another_host_When_its_host_is_asked_for_Then_the_usage_error_says_ssh_is_needed_and_how()
    {
        var e = await Assert.ThrowsAsync<LabUsageException>(() => LabHosts.ForLibvirtUriAsync("qemu+tls://hv.example/system"));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("needs SSH access", e.Message);
        Assert.Contains("qemu+ssh://USER@hv.example/system", e.Message);
    }

    [Fact]
    public void Given_a_tls_uri_that_names_its_files_ssh_address_When_read_Then_the_files_are_reached_over_ssh_there_with_the_uris_key_and_known_hosts()
    {
        const string uri = "qemu+tls://hv.example:16514/system?pkipath=/etc/lab/pki&lab_ssh=lab@files.example:2222&keyfile=/k/id&known_hosts=/k/known";

        var o = LabHosts.FilesAddress(uri)!;

        Assert.Equal(("files.example", 2222, "lab"), (o.Host, o.Port, o.User));
        Assert.Equal(["/k/id"], o.PrivateKeyFiles);
        Assert.Equal("/k/known", o.KnownHostsFile);
        Assert.True(LabHosts.FilesOverSsh(uri));
        Assert.False(LabHosts.FilesAreLocal(uri));
        // libvirt gets its own parameters only.
        Assert.Equal("qemu+tls://hv.example:16514/system?pkipath=/etc/lab/pki", LabHosts.ForLibvirt(uri));
    }

    [Theory]
    // Loopback too: the files are where that sshd is, which may be another namespace.
    [InlineData("qemu+tls://127.0.0.1/system?lab_ssh=root@127.0.0.1", "qemu+tls://127.0.0.1/system", "root@127.0.0.1:22")]
    [InlineData("qemu+tcp://hv.example/system?lab_ssh=hv.example", "qemu+tcp://hv.example/system", null)]
    public void Given_a_non_ssh_uri_with_a_files_address_When_read_Then_its_files_are_not_local_and_libvirt_sees_no_lab_parameter(string uri, string forLibvirt, string? address)
    {
        Assert.False(LabHosts.FilesAreLocal(uri));
        Assert.Equal(forLibvirt, LabHosts.ForLibvirt(uri));
        if (address is not null)
        {
            Assert.Equal(address, LabHosts.FilesAddress(uri)!.ToString());
        }
    }

    [Theory]
    [InlineData("qemu+ssh://root@hv.example/system?keyfile=/k&known_hosts=/h")]
    [InlineData("qemu:///system")]
    [InlineData("qemu+tls://hv.example/system?pkipath=/p")]
    public void Given_a_uri_without_a_files_address_When_given_to_libvirt_Then_it_is_unchanged(string uri)
    {
        Assert.Equal(uri, LabHosts.ForLibvirt(uri));
        Assert.Null(LabHosts.FilesAddress(uri));
    }

    [Theory]
    [InlineData("qemu+tls://hv.example/system?lab_ssh=")]
    [InlineData("qemu+tls://hv.example/system?lab_ssh=root@hv.example/some/path")]
    public async Task Given_a_malformed_files_address_When_its_host_is_asked_for_Then_a_one_line_usage_error_names_it(string uri)
    {
        var e = await Assert.ThrowsAsync<LabUsageException>(() => LabHosts.ForLibvirtUriAsync(uri));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("lab_ssh=", e.Message);
        Assert.Contains("USER@HOST[:PORT]", e.Message);
    }

    [Fact]
    public async Task Given_an_ssh_uri_with_a_files_address_When_its_host_is_asked_for_Then_a_one_line_usage_error_says_lab_ssh_is_for_other_transports()
    {
        var e = await Assert.ThrowsAsync<LabUsageException>(() => LabHosts.ForLibvirtUriAsync("qemu+ssh://root@hv.example/system?lab_ssh=root@other.example"));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("lab_ssh= is for a URI without SSH", e.Message);
    }

    [Fact]
    public void Given_a_files_address_with_an_escaped_user_When_read_Then_it_is_unescaped_once()
    {
        Assert.Equal("lab%40x", LabHosts.FilesAddress("qemu+tls://hv.example/system?lab_ssh=lab%2540x@files.example")!.User);
    }
}
