using LabKernel.Block;
using LabKernel.Images;
using LabKernel.IntegrationTests.Block;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// QEMU killed (SIGKILL) in the middle of a block job, as a crashed host would: the job is reported as interrupted at
/// once (not after its time limit), the chain still opens with no corruption, and the same job run again completes
/// with every pattern where it belongs.
/// </summary>
public sealed class KilledQemuTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_a_commit_under_way_When_QEMU_is_killed_Then_the_job_fails_at_once_the_chain_has_no_corruption_and_a_second_commit_completes()
    {
        var top = await _lab.ThreeLayersAsync();
        var mid = _lab.PathOf("mid.qcow2");
        var @base = _lab.PathOf("base.qcow2");
        // 40 MiB in mid, committed at 4 MiB/s: about ten seconds of job to kill QEMU in.
        await QemuIo.WritePatternAsync(mid, 8 * M, 40 * M, 0xee);
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        var job = await block.StartCommitAsync("disk0", top: "mid.qcow2", @base: "base.qcow2", new BlockCommitOptions { Speed = 4 * M });
        await foreach (var p in job.WatchAsync())
        {
            if (p.Offset > 0)
            {
                break;
            }
        }
        System.Diagnostics.Process.GetProcessById(machine.ProcessId).Kill();

        // The lab reports the interrupted job now, with a typed error, not when its time limit passes.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var interrupted = await Assert.ThrowsAnyAsync<LabException>(() => job.WaitAsync(TimeSpan.FromMinutes(5)));
        Assert.IsNotType<LabTimeoutException>(interrupted);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"reported after {clock.Elapsed}");
        await _lab.StopAllAsync();

        // The chain opens as it was (an intermediate commit rewrites no header until it completes), without corruption.
        var chain = await QemuImg.GetBackingChainAsync(top);
        Assert.Equal([top, mid, @base], chain.Layers.Select(l => l.Filename));
        foreach (var image in new[] { @base, mid, top })
        {
            var check = await QemuImg.CheckAsync(image);
            Assert.True(check.Corruptions == 0 && check.CheckErrors == 0, check.Summary);
        }

        // The same commit again completes, and every pattern is where it belongs.
        var again = await _lab.StartAsync(top);
        var after = await again.Block().CommitAsync("disk0", top: "mid.qcow2", @base: "base.qcow2");
        Assert.Equal("base.qcow2 <- top.qcow2 (active)", after.ToText());
        await _lab.StopAllAsync();
        await AssertPatternAsync(@base, 0, M, 0xaa);
        await AssertPatternAsync(@base, M, M, 0xbb);
        await AssertPatternAsync(@base, 8 * M, 40 * M, 0xee);
        await AssertPatternAsync(top, 2 * M, M, 0xcc);
        foreach (var image in new[] { @base, top })
        {
            var check = await QemuImg.CheckAsync(image);
            Assert.True(check.Corruptions == 0 && check.CheckErrors == 0, check.Summary);
        }
    }
}
