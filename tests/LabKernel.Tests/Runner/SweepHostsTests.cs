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
            """));
        Assert.Equal(2, hosts.Count);
        Assert.Equal(new SweepHost("qemu:///system", 2), hosts[0]);
        Assert.Equal(new SweepHost("qemu+ssh://lab@hv-2.example.org/system?keyfile=/k&known_hosts=/kh", 1) { Domain = "web-01", HostFolder = "/srv/lab" }, hosts[1]);
    }

    [Theory]
    [InlineData("- uri: qemu+tls://hv-3.example.org/system\n  domain: d\n", "qemu+tls://hv-3.example.org/system is another host without SSH")]
    [InlineData("- uri: qemu+ssh://hv-3.example.org/system\n", "qemu+ssh://hv-3.example.org/system needs a domain")]
    [InlineData("- uri: qemu:///system\n- uri: qemu:///system\n", "qemu:///system is listed twice (give it more jobs instead)")]
    [InlineData("- uri: qemu:///system\n  colour: blue\n", "unknown key 'colour' (a host has uri, jobs, domain and hostFolder)")]
    public void Given_a_host_the_lab_cannot_use_as_written_When_read_Then_one_line_says_why(string yaml, string expected)
    {
        var path = Hosts(yaml);
        var e = Assert.Throws<LabUsageException>(() => SweepMatrix.ReadHosts(path));
        Assert.StartsWith($"--hosts {path}: {expected}", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
