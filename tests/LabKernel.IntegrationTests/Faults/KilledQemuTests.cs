using System.Diagnostics;
using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Jobs;
using LabKernel.IntegrationTests.Block;
using LabKernel.Machines;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// QEMU killed (SIGKILL) in the middle of a block job (commit, stream, mirror), as a crashed host would: the job is
/// reported as interrupted at once (not after its time limit), the chain still opens with no corruption, and the same
/// job run again completes with every pattern where it belongs.
/// </summary>
public sealed class KilledQemuTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_a_commit_under_way_When_QEMU_is_killed_Then_the_job_fails_at_once_the_chain_has_no_corruption_and_a_second_commit_completes()
    {
        var (top, mid, @base) = await ChainWithSlowJobDataAsync();
        var machine = await _lab.StartAsync(top);

        var job = await machine.Block().StartCommitAsync("disk0", top: "mid.qcow2", @base: "base.qcow2", new BlockCommitOptions { Speed = 4 * M });
        await KillOnceUnderWayAsync(machine, job);

        // The chain opens as it was (an intermediate commit rewrites no header until it completes), without corruption.
        await AssertChainAsync(top, [top, mid, @base]);

        var again = await _lab.StartAsync(top);
        var after = await again.Block().CommitAsync("disk0", top: "mid.qcow2", @base: "base.qcow2");
        Assert.Equal("base.qcow2 <- top.qcow2 (active)", after.ToText());
        await _lab.StopAllAsync();
        await AssertEveryPatternAsync(@base, top);
        await AssertCleanAsync(@base, top);
    }

    [Fact]
    public async Task Given_a_stream_under_way_When_QEMU_is_killed_Then_the_job_fails_at_once_the_chain_has_no_corruption_and_a_second_stream_completes()
    {
        var (top, mid, @base) = await ChainWithSlowJobDataAsync();
        var machine = await _lab.StartAsync(top);

        var job = await machine.Block().StartStreamAsync("disk0", options: new BlockStreamOptions { Speed = 4 * M });
        await KillOnceUnderWayAsync(machine, job);

        // A stream drops the backing link only when it completes: the top still names mid, part of mid copied up.
        await AssertChainAsync(top, [top, mid, @base]);

        var again = await _lab.StartAsync(top);
        var after = await again.Block().StreamAsync("disk0");
        Assert.Equal("top.qcow2 (active)", after.ToText());
        await _lab.StopAllAsync();
        Assert.False((await QemuImg.Local.InfoAsync(top)).HasBacking);
        await AssertEveryPatternAsync(top, top);
        await AssertCleanAsync(@base, mid, top);
    }

    [Fact]
    public async Task Given_a_mirror_under_way_When_QEMU_is_killed_Then_the_job_fails_at_once_the_source_has_no_corruption_and_a_second_mirror_onto_the_same_target_completes()
    {
        var (top, mid, @base) = await ChainWithSlowJobDataAsync();
        var target = _lab.PathOf("copy.qcow2");
        var machine = await _lab.StartAsync(top);

        var job = await machine.Block().StartMirrorAsync("disk0", new MirrorTarget.NewFile(target),
            new MirrorOptions { Sync = MirrorSync.Full, Speed = 4 * M, Granularity = 65536, BufferSize = M });
        await KillOnceUnderWayAsync(machine, job);

        // The source chain is as it was and clean; the half-written copy opens and has no corruption either.
        await AssertChainAsync(top, [top, mid, @base]);
        await AssertCleanAsync(target);
        Assert.False((await QemuImg.Local.CompareAsync(top, target)).Identical, "the copy was cut short, so it cannot equal the source yet");

        // Mirroring again onto the same (lab-made) target overwrites it whole and ends with an equal copy.
        var again = await _lab.StartAsync(top);
        await again.Block().MirrorAsync("disk0", new MirrorTarget.ExistingFile(target), new MirrorOptions { Sync = MirrorSync.Full });
        await _lab.StopAllAsync();
        Assert.True((await QemuImg.Local.CompareAsync(top, target)).Identical, "the second mirror's copy equals the source");
        await AssertEveryPatternAsync(target, target);
        await AssertCleanAsync(@base, mid, top, target);
    }

    /// <summary>The three-layer chain with 40 MiB more in mid: about ten seconds of job at 4 MiB/s to kill QEMU in.</summary>
    private async Task<(string Top, string Mid, string Base)> ChainWithSlowJobDataAsync()
    {
        var top = await _lab.ThreeLayersAsync();
        var mid = _lab.PathOf("mid.qcow2");
        await QemuIo.WritePatternAsync(mid, 8 * M, 40 * M, 0xee);
        return (top, mid, _lab.PathOf("base.qcow2"));
    }

    /// <summary>
    /// Waits for the job's first progress, SIGKILLs QEMU, and requires the job's wait to fail with a typed error at
    /// once (not at its 5-minute limit); then disposes what is left of the machine.
    /// </summary>
    private async Task KillOnceUnderWayAsync(QemuMachine machine, BlockJob job)
    {
        await WaitPartWayAsync(job);
        Process.GetProcessById(machine.ProcessId).Kill();

        var clock = Stopwatch.StartNew();
        var interrupted = await Assert.ThrowsAnyAsync<LabException>(() => job.WaitAsync(TimeSpan.FromMinutes(5)));
        Assert.IsNotType<LabTimeoutException>(interrupted);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"reported after {clock.Elapsed}");
        var named = Assert.IsType<BlockJobInterruptedException>(interrupted);
        Assert.Equal(job.Id, named.JobId);
        // One line naming the job and how far it got, then why the connection ended (QMP's own error).
        Assert.StartsWith($"{job.Type} job {job.Id} interrupted at {named.LastProgress.Offset} of {named.LastProgress.Length} bytes: ", interrupted.Message, StringComparison.Ordinal);
        Assert.IsType<LabKernel.Qmp.QmpDisconnectedException>(interrupted.InnerException);
        Assert.DoesNotContain('\n', interrupted.Message);
        Assert.True(named.LastProgress.Offset > 0 && named.LastProgress.Offset < named.LastProgress.Length, $"killed part-way: {named.LastProgress}");
        await _lab.StopAllAsync();
    }

    private static async Task AssertChainAsync(string top, string[] expected)
    {
        var chain = await QemuImg.Local.GetBackingChainAsync(top);
        Assert.Equal(expected, chain.Layers.Select(l => l.Filename));
        await AssertCleanAsync(expected);
    }

    /// <summary>No corruption and no check error (leaked clusters from the kill are allowed: they lose no data).</summary>
    private static async Task AssertCleanAsync(params string[] images)
    {
        foreach (var image in images)
        {
            var check = await QemuImg.Local.CheckAsync(image);
            Assert.True(check.Corruptions == 0 && check.CheckErrors == 0, $"{Path.GetFileName(image)}: {check.Summary}");
        }
    }

    /// <summary>Every pattern of the chain (base 0xaa, mid 0xbb and 0xee) read through <paramref name="lower"/>, top's 0xcc through <paramref name="upper"/>.</summary>
    private static async Task AssertEveryPatternAsync(string lower, string upper)
    {
        await AssertPatternAsync(lower, 0, M, 0xaa);
        await AssertPatternAsync(lower, M, M, 0xbb);
        await AssertPatternAsync(lower, 8 * M, 40 * M, 0xee);
        await AssertPatternAsync(upper, 2 * M, M, 0xcc);
    }
}
