using LabKernel.Block;
using LabKernel.Jobs;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>QMP through libvirt (the documents' <c>virsh qemu-monitor-command</c>), with events, on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class QmpBridgeTests(LibvirtFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Given_qmp_through_libvirt_When_a_mirror_runs_Then_its_job_is_driven_by_events_and_the_chain_matches_libvirts()
    {
        await using var scope = await fx.ScopeAsync();
        await using var qmp = await LibvirtQmp.ConnectAsync(fx.Domain);
        Assert.True(qmp.QemuVersion.Major >= 7, qmp.QemuVersion.ToString());
        var block = await LibvirtQmp.BlockLayerAsync(fx.Domain, qmp);
        var chain = await block.QueryChainAsync("vda");
        var xml = await fx.Domain.Block.QueryChainAsync("vda");
        Assert.Equal(xml.Chain, chain.Filenames);

        var copy = fx.PathOf("bridge-copy.qcow2");
        try
        {
            await using var job = await block.StartMirrorAsync("vda", new MirrorTarget.NewFile(copy), new MirrorOptions { Sync = MirrorSync.Top });
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(5));
            Assert.True(job.HasBeenReady);
            await job.CancelAsync();
            var result = await job.WaitAsync(TimeSpan.FromMinutes(5));
            output.WriteLine($"{result.Offset} bytes in {result.Elapsed.TotalSeconds:0.0} s");
            Assert.True(result.Cancelled);
            Assert.True(result.Offset > 0);
            Assert.Contains("No active jobs", await qmp.HumanMonitorCommandAsync("info block-jobs"));
            var after = await block.QueryChainAsync("vda");
            Assert.Equal(chain.Filenames, after.Filenames);
        }
        finally
        {
            File.Delete(copy);
        }
        var error = await Assert.ThrowsAsync<LabKernel.Qmp.QmpErrorException>(() => qmp.ExecuteAsync("no-such-command"));
        Assert.Contains("no-such-command", error.Message);
    }
}
