using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>Agent and QEMU monitor passthrough on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class PassthroughTests(LibvirtFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Agent_commands_pass_through_libvirt_and_back()
    {
        var d = fx.Domain;
        var raw = await d.Agent.CommandAsync("{\"execute\":\"guest-info\"}");
        Assert.Contains("\"version\"", raw);
        var echo = await d.Agent.ExecAsync(["/bin/echo", "through libvirt"], new GuestExecOptions { Check = true });
        Assert.Equal("through libvirt\n", echo.StandardOutput);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            await d.Agent.PingAsync();
        }
        output.WriteLine($"guest-ping through virDomainQemuAgentCommand: {sw.Elapsed.TotalMilliseconds / 10:0.0} ms each");
        var bad = await Assert.ThrowsAsync<LibvirtException>(() => d.Agent.ExecuteAsync("guest-no-such-command"));
        output.WriteLine(bad.Message);
        Assert.DoesNotContain('\n', bad.Message);
    }

    [Fact]
    public async Task HMP_and_QMP_pass_through_to_the_domain_monitor()
    {
        var d = fx.Domain;
        var status = await d.Monitor.HmpAsync("info status");
        Assert.Contains("running", status);
        var block = await d.Monitor.HmpAsync("info block");
        output.WriteLine(block);
        Assert.Contains(Path.GetFileName(fx.Guest.RootOverlay), block);
        var qmp = await d.Monitor.QmpAsync("{\"execute\":\"query-status\"}");
        Assert.Equal("running", qmp?["return"]?["status"]?.GetValue<string>());
        var jobs = await d.Monitor.HmpAsync("info block-jobs");
        Assert.Contains("No active jobs", jobs);
    }
}
