using LabKernel.GuestAgent;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>Internal and memory snapshots, the lab's external revert, and shutdown, on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class SnapshotKindsTests(LibvirtFixture fx, ITestOutputHelper output)
{
    private static async Task<bool> ExistsAsync(LibvirtDomain d, string path) =>
        (await d.Agent.ExecAsync(["/usr/bin/test", "-e", path])).ExitCode == 0;

    private static Task TouchAsync(LibvirtDomain d, string path) =>
        d.Agent.ExecAsync(["/bin/sh", "-c", $"touch {path} && sync"], new GuestExecOptions { Check = true });

    /// <summary>
    /// virDomainSave/Restore on a lab-made domain: the guest comes back from its saved instant, not booted. A file in
    /// a tmpfs (memory only: a boot loses it) is there again, the boot id is the same and the uptime goes on from
    /// where it was. A state file the lab did not save is refused.
    /// </summary>
    [Fact]
    public async Task Given_a_running_lab_domain_When_saved_and_restored_Then_its_memory_comes_back_and_it_was_not_booted()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var marker = Guid.NewGuid().ToString("N");
        await d.Agent.ExecAsync(["/bin/sh", "-c", $"mkdir -p /run/lab-save && echo {marker} > /run/lab-save/marker"], new GuestExecOptions { Check = true });
        var bootBefore = (await d.Agent.ShellAsync("cat /proc/sys/kernel/random/boot_id", new GuestExecOptions { Check = true })).StandardOutput.Trim();
        var uptimeBefore = double.Parse((await d.Agent.ShellAsync("cut -d' ' -f1 /proc/uptime", new GuestExecOptions { Check = true })).StandardOutput.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var state = fx.PathOf($"save-{marker[..8]}.state");

        var saved = await d.SaveAsync(state);
        Assert.Equal(DomainState.ShutOff, await d.GetStateAsync());
        var restored = await d.RestoreAsync(state);

        output.WriteLine($"save {saved.TotalSeconds:0.00} s ({new FileInfo(state).Length / 1048576.0:0} MiB), restore to agent {restored.TotalSeconds:0.00} s");
        Assert.Equal(DomainState.Running, await d.GetStateAsync());
        Assert.Equal(marker, (await d.Agent.ShellAsync("cat /run/lab-save/marker", new GuestExecOptions { Check = true })).StandardOutput.Trim());
        Assert.Equal(bootBefore, (await d.Agent.ShellAsync("cat /proc/sys/kernel/random/boot_id", new GuestExecOptions { Check = true })).StandardOutput.Trim());
        var uptimeAfter = double.Parse((await d.Agent.ShellAsync("cut -d' ' -f1 /proc/uptime", new GuestExecOptions { Check = true })).StandardOutput.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(uptimeAfter >= uptimeBefore, $"uptime {uptimeAfter} s after the restore, {uptimeBefore} s before the save: booted?");
        var foreign = fx.PathOf("not-ours.state");
        await File.WriteAllTextAsync(foreign, "not a saved state");
        var e = await Assert.ThrowsAsync<LabUsageException>(() => d.RestoreAsync(foreign));
        Assert.Contains("is not a state the lab saved", e.Message, StringComparison.Ordinal);
        File.Delete(state);
    }

    [Fact]
    public async Task Given_an_internal_snapshot_When_reverted_Then_the_guest_is_back_at_the_snapshot_and_deleting_it_empties_the_image_list()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        await TouchAsync(d, "/root/before-internal");
        await d.Snapshots.CreateInternalAsync("int1");
        await d.Agent.ExecAsync(["/bin/sh", "-c", "rm /root/before-internal && touch /root/after-internal && sync"], new GuestExecOptions { Check = true });
        var info = (await d.Snapshots.ListAsync()).Single(s => s.Name == "int1");
        Assert.False(info.IsExternal);
        Assert.Equal("internal", info.Memory);
        Assert.Contains((await QemuImg.Local.ListSnapshotsAsync(scope.Start.Chain[0])), s => s.Name == "int1");

        await d.Snapshots.RevertAsync("int1");
        var wait = await d.WaitForAgentAsync(TimeSpan.FromMinutes(1));
        output.WriteLine($"agent answered {wait.TotalSeconds:0.0} s after the revert");
        Assert.Equal(DomainState.Running, await d.GetStateAsync());
        Assert.True(await ExistsAsync(d, "/root/before-internal"));
        Assert.False(await ExistsAsync(d, "/root/after-internal"));

        await d.Snapshots.DeleteAsync("int1");
        Assert.Empty(await d.Snapshots.ListAsync());
        Assert.Empty(await QemuImg.Local.ListSnapshotsAsync(scope.Start.Chain[0]));
        await d.Agent.ExecAsync(["/bin/rm", "-f", "/root/before-internal"], new GuestExecOptions { Check = true });
    }

    [Fact]
    public async Task Given_a_memory_snapshot_When_the_guest_is_shut_down_and_reverted_externally_Then_it_runs_on_a_new_overlay_over_overlay1()
    {
        var d = fx.Domain;
        await using var scope = await fx.ScopeAsync();
        var start = scope.Start;
        var overlay1 = start.Chain[0];
        var memOverlay = fx.PathOf("mem-overlay2.qcow2");
        var memFile = fx.PathOf("mem1.memory");
        var reverted = fx.PathOf("reverted.qcow2");

        await d.Snapshots.CreateMemoryAsync("mem1", memFile, [new DiskSnapshotSpec("vda", memOverlay)], live: true);
        Assert.Equal(DomainState.Running, await d.GetStateAsync());
        Assert.True(new FileInfo(memFile).Length > 0);
        var mem = (await d.Snapshots.ListAsync()).Single(s => s.Name == "mem1");
        Assert.Equal(("external", memFile), (mem.Memory, mem.MemoryFile));
        Assert.Equal([memOverlay, .. start.Chain], (await d.Block.QueryChainAsync("vda")).Chain);
        var refused = await Assert.ThrowsAsync<LabUsageException>(() => d.Snapshots.RevertAsync("mem1"));
        output.WriteLine(refused.Message);
        await Assert.ThrowsAsync<LabKernel.OverlayExistsException>(() => d.Snapshots.CreateDiskOnlyAsync("again", "vda", memOverlay));

        await TouchAsync(d, "/root/after-mem1");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await d.ShutdownAsync(TimeSpan.FromMinutes(1), ShutdownMode.GuestAgent);
        output.WriteLine($"shutdown through the agent took {sw.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(DomainState.ShutOff, await d.GetStateAsync());
        Assert.Contains(d.Connection.RecentEvents, e => e is DomainLifecycleEventRecord { Event: DomainLifecycleEvent.Stopped } l && l.Domain == d.Name);

        var r = await d.Snapshots.RevertExternalAsync("vda", overlay1, reverted);
        output.WriteLine($"reverted to {Path.GetFileName(r.RevertedTo)} via {Path.GetFileName(r.NewOverlay)}, abandoned {string.Join(", ", r.Abandoned.Select(Path.GetFileName))}");
        Assert.Equal([memOverlay], r.Abandoned);
        Assert.False(await ExistsAsync(d, "/root/after-mem1"));
        var check = await d.Block.CheckChainAgreementAsync("vda");
        Assert.Equal([reverted, .. start.Chain], check.Xml.Chain);
        Assert.True(check.Agreement.Agrees, check.Agreement.Summary);
        Assert.Equal(reverted, (await d.ListDisksAsync(inactive: true)).Single(x => x.Target == "vda").Source);

        var restored = await d.RestoreChainAsync(start, restart: true);
        Assert.Equal([reverted], restored.DeletedImages);
        Assert.Equal(["mem1"], restored.DroppedSnapshots);
        Assert.True(File.Exists(memOverlay)); // not in the chain any more: left for the caller, never deleted blindly
    }
}
