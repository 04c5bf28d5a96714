using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>Errors a user sees first: a wrong domain name, a libvirtd that is not there.</summary>
public sealed class LibvirtErrorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_wrong_domain_name_gives_a_one_line_error_naming_the_domain_and_URI()
    {
        await LibvirtFixture.EnsureLibvirtdAsync();
        await using var c = await LibvirtConnection.OpenAsync();
        var name = "no-such-domain-" + Guid.NewGuid().ToString("N")[..6];
        var e = await Assert.ThrowsAsync<LibvirtDomainNotFoundException>(() => c.LookupDomainAsync(name));
        output.WriteLine(e.Message);
        Assert.Contains(name, e.Message);
        Assert.Contains("qemu:///system", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(42, e.Code);
        Assert.IsAssignableFrom<LabException>(e);
    }

    [Fact]
    public async Task A_libvirtd_that_is_not_running_gives_a_one_line_error_naming_the_URI()
    {
        const string uri = "qemu+unix:///system?socket=/nonexistent/sock";
        var e = await Assert.ThrowsAsync<LibvirtConnectionException>(() => LibvirtConnection.OpenAsync(uri));
        output.WriteLine(e.Message);
        Assert.Contains(uri, e.Message);
        Assert.Contains("/nonexistent/sock", e.LibvirtMessage);
        Assert.DoesNotContain('\n', e.Message);
        Assert.IsAssignableFrom<LabException>(e);
    }
}
