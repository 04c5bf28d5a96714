using LabKernel.GuestAgent;
using LabKernel.Libvirt;
using LabKernel.Tests.Ssh;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

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
