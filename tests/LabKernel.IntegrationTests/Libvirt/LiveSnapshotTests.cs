using LabKernel.GuestAgent;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>The 000_dd5fc575f1b82753.txt procedures through libvirt, on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveSnapshotTests(LibvirtFixture fx, ITestOutputHelper output)
{
    private const int Numbers = 1_500_000;

    [Fact]
    public async Task Case1_Given_a_guest_writer_When_a_live_disk_only_snapshot_is_taken_Then_the_new_top_is_complete_the_old_layer_a_prefix_and_cleanup_restores_the_chain()
    {
        var d = fx.Domain;
        var start = await d.CaptureChainAsync("vda");
        var overlay2 = fx.PathOf("case1-overlay2.qcow2");
        await d.Agent.ExecAsync(["/bin/rm", "-f", NumberFile.GuestPath], new GuestExecOptions { Check = true });

        var writer = await d.Agent.StartAsync(NumberFile.WriterArgv(Numbers));
        await WaitForLinesAsync(d, Numbers / 5);
        await d.Snapshots.CreateDiskOnlyAsync("snap", "vda", overlay2);
        var runningAtSnapshot = await NumberFile.GuestLinesAsync(d.Agent);
        var result = await writer.WaitAsync(TimeSpan.FromMinutes(5));
        await d.Agent.ExecAsync(["/bin/sync"], new GuestExecOptions { Check = true });

        Assert.True(result.Succeeded, result.StandardError);
        Assert.InRange(runningAtSnapshot, 1, Numbers - 1);
        var check = await d.Block.CheckChainAgreementAsync("vda");
        output.WriteLine($"after snapshot: XML {check.Xml.ToText()}; qemu-img {check.Headers.ToText()}; {check.Agreement.Summary}");
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        Assert.Equal(3, check.Xml.Chain.Count);
        Assert.Equal(overlay2, check.Xml.Source);
        Assert.Equal(start.Chain, check.Xml.Chain.Skip(1));

        var top = NumberFile.Check(await NumberFile.ReadOfflineAsync(overlay2, fx.Guest.WorkFolder));
        var old = NumberFile.Check(await NumberFile.ReadOfflineAsync(start.Chain[0], fx.Guest.WorkFolder));
        output.WriteLine($"writer {result.Duration.TotalSeconds:0.0} s; new top: {top.Lines} lines ({top.Detail}); old layer: {old.Lines} lines ({old.Detail})");
        Assert.Equal(new NumberPrefix(Numbers, true, "ends after a whole line"), top);
        Assert.True(old.Consistent, old.Detail);
        Assert.InRange(old.Lines, 0, Numbers - 1);

        var snaps = await d.Snapshots.ListAsync();
        Assert.Contains(snaps, s => s.Name == "snap" && s.State == "disk-snapshot" && s.IsExternal);
        output.WriteLine(await d.Snapshots.TreeAsync());

        var restored = await d.RestoreChainAsync(start, restart: true);
        output.WriteLine(restored.Summary);
        Assert.Equal(["snap"], restored.DroppedSnapshots);
        Assert.Equal([overlay2], restored.DeletedImages);
        Assert.Empty(restored.KeptImages);
        Assert.False(File.Exists(overlay2));
        Assert.True(File.Exists(start.Chain[0]));
        var after = await d.Block.CheckChainAgreementAsync("vda");
        Assert.Equal(start.Chain, after.Xml.Chain);
        Assert.True(after.Agreement.Agrees, after.Agreement.Summary);
        Assert.Empty(await d.Snapshots.ListAsync());
        Assert.True((await QemuImg.CheckAsync(start.Chain[0])).IsClean);
    }

    private async Task WaitForLinesAsync(LibvirtDomain d, int lines)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromMinutes(2))
        {
            var n = await NumberFile.GuestLinesAsync(d.Agent);
            if (n >= lines)
            {
                output.WriteLine($"guest had {n} lines after {sw.Elapsed.TotalSeconds:0.0} s");
                return;
            }
            await Task.Delay(200);
        }
        throw new TimeoutException("the guest writer did not start");
    }
}
