using System.Globalization;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>The 000_dd5fc575f1b82753.txt procedures through libvirt, on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveSnapshotTests(LibvirtFixture fx, ITestOutputHelper output)
{
    private const int Numbers = 1_500_000;

    // Long enough (about 20 s under TCG) that the snapshot, taken once part of the file is on the disk, lands mid-write.
    private const int Case1Numbers = 3_000_000;

    [Fact]
    public async Task Case1_Given_a_guest_writer_When_a_live_disk_only_snapshot_is_taken_Then_the_new_top_is_complete_the_old_layer_a_prefix_and_cleanup_restores_the_chain()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var start = scope.Start;
        var overlay2 = fx.PathOf("case1-overlay2.qcow2");
        await d.Agent.ExecAsync(["/bin/rm", "-f", NumberFile.GuestPath], new GuestExecOptions { Check = true });
        // Write dirty pages back within a second (instead of 30 s) and commit ext4's journal every second (instead
        // of 5 s), so the old layer holds a real prefix of the file rather than nothing.
        await d.Agent.ExecAsync(["/bin/sh", "-c", "echo 100 > /proc/sys/vm/dirty_expire_centisecs; echo 50 > /proc/sys/vm/dirty_writeback_centisecs; mount -o remount,commit=1 /"], new GuestExecOptions { Check = true });

        var writer = await d.Agent.StartAsync(NumberFile.WriterArgv(Case1Numbers));
        await WaitForLinesAsync(d, Case1Numbers / 4);
        // The old layer must hold a real prefix: wait until part of the file is on the disk, in a committed journal
        // transaction, rather than for a fixed time.
        await WaitUntilPartOfTheFileIsOnDiskAsync(d, writer);
        await d.Snapshots.CreateDiskOnlyAsync("snap", "vda", overlay2);
        var runningAtSnapshot = await NumberFile.GuestLinesAsync(d.Agent);
        var result = await writer.WaitAsync(TimeSpan.FromMinutes(5));
        await d.Agent.ExecAsync(["/bin/sync"], new GuestExecOptions { Check = true });

        Assert.True(result.Succeeded, result.StandardError);
        Assert.InRange(runningAtSnapshot, 1, Case1Numbers - 1);
        var check = await d.Block.CheckChainAgreementAsync("vda");
        output.WriteLine($"after snapshot: XML {check.Xml.ToText()}; qemu-img {check.Headers.ToText()}; {check.Agreement.Summary}");
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        Assert.Equal(3, check.Xml.Chain.Count);
        Assert.Equal(overlay2, check.Xml.Source);
        Assert.Equal(start.Chain, check.Xml.Chain.Skip(1));

        var top = NumberFile.Check(await NumberFile.ReadOfflineAsync(overlay2, fx.Guest.WorkFolder));
        var old = NumberFile.Check(await NumberFile.ReadOfflineAsync(start.Chain[0], fx.Guest.WorkFolder));
        output.WriteLine($"writer {result.Duration.TotalSeconds:0.0} s; new top: {top.Lines} lines ({top.Detail}); old layer: {old.Lines} lines ({old.Detail})");
        Assert.Equal(new NumberPrefix(Case1Numbers, true, "ends after a whole line"), top);
        Assert.True(old.Consistent, old.Detail);
        Assert.InRange(old.Lines, 1, Case1Numbers - 1);

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
        Assert.True((await QemuImg.Local.CheckAsync(start.Chain[0])).IsClean);
    }

    [Fact]
    public async Task Case2_Given_overlay2_When_a_snapshot_is_taken_and_overlay2_committed_into_overlay1_while_the_guest_writes_Then_XML_and_qemu_img_show_overlay1_under_overlay3()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var start = scope.Start;
        var overlay1 = start.Chain[0];
        var overlay2 = fx.PathOf("case2-overlay2.qcow2");
        var overlay3 = fx.PathOf("case2-overlay3.qcow2");
        await d.Snapshots.CreateDiskOnlyAsync("case2-first", "vda", overlay2);
        await d.Agent.ExecAsync(["/bin/rm", "-f", NumberFile.GuestPath], new GuestExecOptions { Check = true });

        var writer = await d.Agent.StartAsync(NumberFile.WriterArgv(Numbers));
        await WaitForLinesAsync(d, Numbers / 5);
        await d.Snapshots.CreateDiskOnlyAsync("case2-second", "vda", overlay3);
        await using (var job = await d.Block.StartCommitAsync("vda", top: overlay2, @base: overlay1))
        {
            var done = await job.WaitAsync(TimeSpan.FromMinutes(5));
            output.WriteLine($"commit {Path.GetFileName(overlay2)} -> {Path.GetFileName(overlay1)}: {job.Outcome} after {done.Elapsed.TotalSeconds:0.0} s; events {string.Join(", ", job.Events.Select(e => e.Status))}");
            Assert.Equal(LibvirtBlockJobStatus.Completed, job.Outcome);
            Assert.Equal("commit", job.Type);
        }
        var linesWhenCommitted = await NumberFile.GuestLinesAsync(d.Agent);
        var result = await writer.WaitAsync(TimeSpan.FromMinutes(5));
        await d.Agent.ExecAsync(["/bin/sync"], new GuestExecOptions { Check = true });
        Assert.True(result.Succeeded, result.StandardError);

        var check = await d.Block.CheckChainAgreementAsync("vda");
        output.WriteLine($"writer had {linesWhenCommitted} lines when the commit ended; XML {check.Xml.ToText()}; qemu-img {check.Headers.ToText()}; {check.Agreement.Summary}");
        Assert.Equal([overlay3, overlay1, .. start.Chain.Skip(1)], check.Xml.Chain);
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        var top = NumberFile.Check(await NumberFile.ReadOfflineAsync(overlay3, fx.Guest.WorkFolder));
        Assert.Equal(new NumberPrefix(Numbers, true, "ends after a whole line"), top);
        Assert.True((await QemuImg.Local.CheckAsync(overlay1)).IsClean);

        var restored = await d.RestoreChainAsync(start, restart: true);
        output.WriteLine(restored.Summary);
        Assert.Equal([overlay3], restored.DeletedImages);
        Assert.Equal(2, restored.DroppedSnapshots.Count);
        Assert.Equal(start.Chain, (await d.Block.QueryChainAsync("vda")).Chain);
    }

    [Fact]
    public async Task Given_three_layers_When_pulled_to_a_base_then_actively_committed_keeping_then_pivoting_Then_every_step_agrees_with_qemu_img()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var start = scope.Start;
        var overlay1 = start.Chain[0];
        var p2 = fx.PathOf("jobs-p2.qcow2");
        var p3 = fx.PathOf("jobs-p3.qcow2");
        await d.Snapshots.CreateDiskOnlyAsync("jobs-a", "vda", p2);
        await d.Agent.ExecAsync(["/bin/sh", "-c", "dd if=/dev/urandom of=/root/jobs.bin bs=1M count=8 status=none && sync"], new GuestExecOptions { Check = true });
        await d.Snapshots.CreateDiskOnlyAsync("jobs-b", "vda", p3, metadata: false);
        Assert.DoesNotContain(await d.Snapshots.ListAsync(), s => s.Name == "jobs-b");

        var journal = new Journal.LabJournal();
        DomainDisk pulled;
        using (Journal.LabJournal.BeginScope(journal))
        {
            pulled = await d.Block.StreamAsync("vda", @base: overlay1);
        }
        Assert.Contains(journal.Entries, e => e.Channel == "libvirt" && e.Succeeded && e.Command == $"virDomainBlockRebase({d.Name}, disk=vda, base={overlay1}, bandwidth=0, flags=0)");
        Assert.Equal([p3, overlay1, .. start.Chain.Skip(1)], pulled.Chain);
        Assert.True((await d.Block.CheckChainAgreementAsync("vda")).Agreement.Agrees);

        var kept = await d.Block.CommitAsync("vda", @base: overlay1, options: new LibvirtCommitOptions { OnReady = Jobs.ReadyAction.Cancel });
        Assert.Equal(pulled.Chain, kept.Chain);

        // The default base is the cached guest image: not the lab's to write (the image guard refuses it first).
        await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() => d.Block.StartCommitAsync("vda"));
        await using (var job = await d.Block.StartCommitAsync("vda", @base: overlay1))
        {
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(3));
            var info = await d.Block.GetJobInfoAsync("vda");
            Assert.NotNull(info);
            Assert.Equal(info.Length, info.Offset);
            await job.PivotAsync();
            var r = await job.WaitAsync(TimeSpan.FromMinutes(2));
            output.WriteLine($"active commit: {string.Join(" -> ", job.Events.Select(e => e.Status))}; {r}");
            Assert.True(r.Completed);
            Assert.Equal("active-commit", job.Type);
        }
        var check = await d.Block.CheckChainAgreementAsync("vda");
        Assert.Equal(start.Chain, check.Xml.Chain);
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        Assert.Equal(overlay1, (await d.ListDisksAsync(inactive: true)).Single(x => x.Target == "vda").Source);
        var sum = await d.Agent.OutputAsync(["/bin/sh", "-c", "sha256sum /root/jobs.bin && rm /root/jobs.bin && sync"]);
        Assert.Contains("/root/jobs.bin", sum);

        var restored = await d.RestoreChainAsync(start, restart: true);
        Assert.False(restored.WasStopped);
        Assert.Equal(["jobs-a"], restored.DroppedSnapshots);
        Assert.Equal(DomainState.Running, await d.GetStateAsync());
    }

    [Fact]
    public async Task Given_a_snapshot_the_user_made_with_virsh_When_the_lab_restores_the_chain_Then_the_overlay_it_did_not_create_is_kept()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var userOverlay = fx.PathOf("user-made.qcow2");
        await Processes.ProcessRunner.RunAsync("virsh", ["-c", "qemu:///system", "snapshot-create-as", d.Name, "usersnap", "--disk-only", "--atomic", "--diskspec", $"vda,snapshot=external,file={userOverlay}"]);
        Assert.Equal([userOverlay, .. scope.Start.Chain], (await d.Block.QueryChainAsync("vda")).Chain);

        var restored = await d.RestoreChainAsync(scope.Start, restart: true);

        output.WriteLine(restored.Summary);
        Assert.Equal([userOverlay], restored.KeptImages);
        Assert.Empty(restored.DeletedImages);
        Assert.True(File.Exists(userOverlay));
        Assert.Equal(["usersnap"], restored.DroppedSnapshots);
        Assert.Equal(scope.Start.Chain, (await d.Block.QueryChainAsync("vda")).Chain);
    }

    private async Task WaitForLinesAsync(LibvirtDomain d, int lines)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var n = await Poll.UntilAsync(async _ =>
        {
            var now = await NumberFile.GuestLinesAsync(d.Agent);
            return (now >= lines, now, $"{now} lines");
        }, $"the guest writer to reach {lines} lines", TimeSpan.FromMinutes(2));
        output.WriteLine($"guest had {n} lines after {clock.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>
    /// In the guest, in one shell: num.txt's size, the page cache not yet on the disk (Dirty + Writeback, counters
    /// folded first through stat_refresh), in KiB, and how many transactions the root filesystem's journal has
    /// committed (/proc/fs/jbd2, the root is /dev/vda).
    /// </summary>
    private const string OnDiskProbe =
        "cat /proc/sys/vm/stat_refresh >/dev/null 2>&1; " +
        "s=$(stat -c %s " + NumberFile.GuestPath + " 2>/dev/null || echo 0); " +
        "d=$(awk '/^(Dirty|Writeback):/ {k += $2} END {print k}' /proc/meminfo); " +
        "t=$(awk 'NR == 1 {print $1; exit}' /proc/fs/jbd2/vda-*/info); " +
        "echo \"$s $d $t\"";

    /// <summary>
    /// Waits until at least 1 MiB of num.txt has been written back (its size minus everything dirty or under
    /// writeback in the guest, which counts other files too, so it errs low) and the journal has committed a
    /// transaction since that was first seen (the one that allocated those blocks is then on the disk too), within
    /// two minutes. Fails at once if the writer finishes first: the snapshot would not land mid-write.
    /// </summary>
    private async Task WaitUntilPartOfTheFileIsOnDiskAsync(LibvirtDomain d, GuestProcess writer)
    {
        const long Enough = 1024 * 1024;
        long? committedWhenWritten = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var status = await Poll.UntilAsync(async _ =>
        {
            if (await writer.TryGetResultAsync() is { } done)
            {
                throw new InvalidOperationException($"the writer finished (exit {done.ExitCode}) before part of its file was on the disk");
            }
            var text = (await d.Agent.ExecAsync(["/bin/sh", "-c", OnDiskProbe], new GuestExecOptions { Check = true })).StandardOutput.Trim();
            var f = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 3 || !long.TryParse(f[0], CultureInfo.InvariantCulture, out var size) || !long.TryParse(f[1], CultureInfo.InvariantCulture, out var notOnDiskKiB)
                || !long.TryParse(f[2], CultureInfo.InvariantCulture, out var commits))
            {
                throw new InvalidOperationException($"unreadable size / page cache / journal reading from the guest: '{text}'");
            }
            var writtenBack = size - notOnDiskKiB * 1024;
            if (committedWhenWritten is null && writtenBack >= Enough)
            {
                committedWhenWritten = commits;
            }
            var line = $"num.txt {size} bytes, at least {Math.Max(0, writtenBack)} written back; journal commits {commits}";
            return (committedWhenWritten is { } c && commits > c, line, line);
        }, "part of num.txt to be on the disk in a committed journal transaction", TimeSpan.FromMinutes(2));
        output.WriteLine($"after {clock.Elapsed.TotalSeconds:0.0} s: {status}");
    }
}
