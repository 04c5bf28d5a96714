using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>blockcopy on the shared persistent domain, on data disks attached for the test (live only).</summary>
[Collection(LibvirtCollection.Name)]
public sealed class BlockCopyTests(LibvirtFixture fx, ITestOutputHelper output)
{
    private const long M = 1024 * 1024;

    private async Task<(string Base, string Top)> MakeDataDiskAsync(string prefix)
    {
        var b = fx.PathOf(prefix + "-base.qcow2");
        var t = fx.PathOf(prefix + "-top.qcow2");
        await QemuImg.Local.CreateAsync(b, "qcow2", 64 * M);
        await QemuIo.WritePatternAsync(b, 0, 16 * M, 0x11);
        await QemuImg.Local.CreateAsync(t, "qcow2", null, new CreateOptions { BackingFile = b, BackingFormat = "qcow2" });
        await QemuIo.WritePatternAsync(t, 8 * M, 16 * M, 0x22);
        return (b, t);
    }

    [Fact]
    public async Task Given_a_persistent_domain_When_a_shallow_reuse_external_copy_is_pivoted_Then_the_disk_runs_on_the_copy_over_the_same_backing()
    {
        var d = fx.Domain;
        var (b, t) = await MakeDataDiskAsync("copy");
        var dest = fx.PathOf("copy-dest.qcow2");
        await d.AttachDiskAsync(t, "vdb");
        try
        {
            var refused = await Assert.ThrowsAsync<LibvirtException>(() => d.Block.StartCopyAsync("vdb", fx.PathOf("copy-refused.qcow2"), new LibvirtCopyOptions { TransientJob = false }));
            output.WriteLine($"without TRANSIENT_JOB: {refused.Message}");
            Assert.Contains("transient", refused.Message, StringComparison.OrdinalIgnoreCase);

            await using var job = await d.Block.StartCopyAsync("vdb", dest);
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
            await job.PivotAsync();
            var r = await job.WaitAsync(TimeSpan.FromMinutes(1));
            output.WriteLine($"copy: {string.Join(" -> ", job.Events.Select(e => e.Status))}; {r}");
            Assert.True(r.Completed);
            var check = await d.Block.CheckChainAgreementAsync("vdb");
            Assert.Equal([dest, b], check.Xml.Chain);
            Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
            Assert.True((await QemuImg.Local.CompareAsync(t, dest)).Identical);
            Assert.True(LabKernel.Host.LabFiles.IsLabMade(dest), $"{dest} is not recorded as the lab's");
        }
        finally
        {
            await d.DetachDiskAsync("vdb");
        }
        Assert.DoesNotContain(await d.ListDisksAsync(), x => x.Target == "vdb");
    }

    [Fact]
    public async Task Given_a_ready_copy_When_the_job_is_aborted_Then_the_domain_stays_on_its_source()
    {
        var d = fx.Domain;
        var (b, t) = await MakeDataDiskAsync("abort");
        var dest = fx.PathOf("abort-dest.qcow2");
        await d.AttachDiskAsync(t, "vdc");
        try
        {
            await using var job = await d.Block.StartCopyAsync("vdc", dest);
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(2));
            await job.AbortAsync();
            var r = await job.WaitAsync(TimeSpan.FromMinutes(1));
            output.WriteLine($"abort: {string.Join(" -> ", job.Events.Select(e => e.Status))}; {r}");
            Assert.True(r.Cancelled);
            Assert.Null(await d.Block.GetJobInfoAsync("vdc"));
            var check = await d.Block.CheckChainAgreementAsync("vdc");
            Assert.Equal([t, b], check.Xml.Chain);
            Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        }
        finally
        {
            await d.DetachDiskAsync("vdc");
        }
    }
}
