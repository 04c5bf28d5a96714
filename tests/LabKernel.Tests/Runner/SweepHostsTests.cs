using LabKernel;
using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

/// <summary>The sweep's hosts file: this machine and hypervisors over SSH, each with its jobs, domain and folder.</summary>
public sealed class SweepHostsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sweep-hosts-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Hosts(string yaml)
    {
        var path = Path.Combine(_dir, "hosts.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public void Given_this_machine_and_a_hypervisor_over_ssh_When_read_Then_each_keeps_its_jobs_domain_and_folder()
    {
        var hosts = SweepMatrix.ReadHosts(Hosts("""
            - uri: qemu:///system
              jobs: 2
            - uri: qemu+ssh://lab@hv-2.example.org/system?keyfile=/k&known_hosts=/kh
              domain: web-01
              hostFolder: /srv/lab
              reconnect: 15
            """));
        Assert.Equal(2, hosts.Count);
        Assert.Equal(new SweepHost("qemu:///system", 2), hosts[0]);
        Assert.Equal(new SweepHost("qemu+ssh://lab@hv-2.example.org/system?keyfile=/k&known_hosts=/kh", 1) { Domain = "web-01", HostFolder = "/srv/lab", ReconnectSeconds = 15 }, hosts[1]);
    }

    [Theory]
    [InlineData("- uri: qemu+tls://hv-3.example.org/system\n  domain: d\n", "qemu+tls://hv-3.example.org/system is another host without SSH")]
    [InlineData("- uri: qemu:///system\n- uri: qemu:///system\n", "qemu:///system is listed twice (give it more jobs instead)")]
    [InlineData("- uri: qemu:///system\n  colour: blue\n", "unknown key 'colour' (a host has uri, jobs, domain, hostFolder and reconnect)")]
    [InlineData("- uri: qemu:///system\n  reconnect: 0\n", "reconnect '0': expected whole seconds, at least 1")]
    [InlineData("- uri: qemu:///system\n  reconnect: 1m\n", "reconnect '1m': expected whole seconds, at least 1")]
    public void Given_a_host_the_lab_cannot_use_as_written_When_read_Then_one_line_says_why(string yaml, string expected)
    {
        var path = Hosts(yaml);
        var e = Assert.Throws<LabUsageException>(() => SweepMatrix.ReadHosts(path));
        Assert.StartsWith($"--hosts {path}: {expected}", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Given_a_hosts_reconnect_seconds_When_a_run_reads_them_from_its_environment_Then_they_are_its_reconnect_limit()
    {
        Assert.Equal(LabKernel.Libvirt.LibvirtConnection.StandardReconnectLimit, LabKernel.Libvirt.LibvirtConnection.ReconnectLimitFrom(null));
        Assert.Equal(TimeSpan.FromSeconds(15), LabKernel.Libvirt.LibvirtConnection.ReconnectLimitFrom("15"));
        var e = Assert.Throws<LabUsageException>(() => LabKernel.Libvirt.LibvirtConnection.ReconnectLimitFrom("soon"));
        Assert.Equal("LAB_LIBVIRT_RECONNECT_SECONDS=soon: expected whole seconds, at least 1", e.Message);
    }
}
