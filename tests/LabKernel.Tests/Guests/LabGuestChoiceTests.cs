using LabKernel.Backends;
using LabKernel.Guests;
using LabKernel.Host;

namespace LabKernel.Tests.Guests;

public sealed class LabGuestChoiceTests
{
    [Theory]
    [InlineData("qemu", "", GuestBackend.Qemu, "")]
    [InlineData(" QEMU ", null, GuestBackend.Qemu, "")]
    [InlineData("libvirt", "", GuestBackend.Libvirt, "")]
    [InlineData("Libvirt", " web1 ", GuestBackend.Libvirt, "web1")]
    public void Valid_backend_choices_are_normalised(string backend, string? domain, GuestBackend expectedBackend, string expectedDomain) =>
        Assert.Equal((expectedBackend, expectedDomain), LabGuests.CheckChoice(backend, domain));

    [Theory]
    [InlineData("vmware", "", "Backend must be qemu or libvirt, not 'vmware'")]
    [InlineData("", "", "Backend must be qemu or libvirt, not ''")]
    [InlineData("qemu", "web1", "Domain='web1' names a libvirt domain: run with Backend=libvirt")]
    public void Wrong_choices_are_a_one_line_usage_error(string backend, string domain, string expected)
    {
        var e = Assert.Throws<LabUsageException>(() => LabGuests.CheckChoice(backend, domain));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Starting_refuses_an_overlay_that_already_exists_before_anything_runs()
    {
        var folder = Directory.CreateTempSubdirectory("lab-choice-").FullName;
        try
        {
            var existing = Path.Combine(folder, "overlay1.qcow2");
            await File.WriteAllTextAsync(existing, "someone's data");
            await Assert.ThrowsAsync<LabKernel.OverlayExistsException>(() => LabGuests.StartAsync(new LabGuestOptions { WorkFolder = folder, Overlays = [existing] }));
            Assert.Equal("someone's data", await File.ReadAllTextAsync(existing));
            await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions { WorkFolder = folder, Overlays = [] }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Exit_hooks_are_registered_until_disposed()
    {
        var before = ProcessExitHooks.Count;
        var ran = false;
        var hook = ProcessExitHooks.Register("test", () => ran = true);
        Assert.Equal(before + 1, ProcessExitHooks.Count);
        hook.Dispose();
        hook.Dispose();
        Assert.Equal(before, ProcessExitHooks.Count);
        Assert.False(ran);
    }
}
