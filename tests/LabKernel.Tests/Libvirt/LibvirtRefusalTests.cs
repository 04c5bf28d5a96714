using LabKernel.Libvirt;

namespace LabKernel.Tests.Libvirt;

/// <summary>
/// Notebook 06's claim (4) counts libvirt's "cannot" as its refusal to revert an external snapshot; a revert that failed
/// for another reason (a lost connection, a missing snapshot, a timeout) must not pass for that refusal.
/// </summary>
public sealed class LibvirtRefusalTests
{
    private static LibvirtException Error(int code, string message) =>
        new("virDomainRevertToSnapshot", "domain 'lab-nb06'", code, 10, message);

    [Fact]
    public void Given_libvirt_9_0s_answer_to_an_external_revert_Then_it_is_a_refusal()
    {
        // What libvirt 9.0 (Debian 12) answered in every run here.
        Assert.True(Error(67, "unsupported configuration: revert to external snapshot not supported yet").IsUnsupported);
        Assert.True(Error(84, "Operation not supported: revert of external snapshot").IsUnsupported);
        Assert.True(Error(3, "this function is not supported by the connection driver").IsUnsupported);
        Assert.True(Error(74, "unsupported flags").IsUnsupported);
    }

    [Theory]
    [InlineData(1, "internal error: client socket is closed")]          // a lost connection
    [InlineData(38, "Cannot recv data: Connection reset by peer")]      // the daemon gone
    [InlineData(72, "Domain snapshot not found: no domain snapshot with matching name 'm'")]
    [InlineData(68, "Timed out during operation: cannot acquire state change lock")]
    [InlineData(42, "Domain not found: no domain with matching name 'lab-nb06'")]
    public void Given_a_revert_that_failed_for_another_reason_Then_it_is_not_a_refusal(int code, string message)
    {
        Assert.False(Error(code, message).IsUnsupported);
    }
}
