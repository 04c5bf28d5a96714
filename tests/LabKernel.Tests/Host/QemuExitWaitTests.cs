using System.Diagnostics;
using System.Text.Json.Nodes;
using LabKernel.Machines;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

/// <summary>A shutdown's wait for QEMU to exit (<c>QemuMachine</c>'s one wait), on a fake clock: alone, and as the machine waits on <see cref="MachineOptions.Time"/>.</summary>
public sealed class QemuExitWaitTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Given_a_QEMU_that_does_not_exit_When_the_limit_passes_on_the_clock_Then_the_wait_says_no_and_not_before()
    {
        var time = new FakeTimeProvider();
        var exited = new TaskCompletionSource();

        var wait = QemuMachine.ExitsWithinAsync(exited.Task, "QEMU lab-x to exit", Limit, time, CancellationToken.None);
        time.Advance(Limit - TimeSpan.FromTicks(1));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        Assert.False(await wait);
    }

    [Fact]
    public async Task Given_a_QEMU_that_exits_before_the_limit_When_waiting_Then_the_wait_says_yes()
    {
        var time = new FakeTimeProvider();
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var wait = QemuMachine.ExitsWithinAsync(exited.Task, "QEMU lab-x to exit", Limit, time, CancellationToken.None);
        time.Advance(Limit / 2);
        exited.SetResult();

        Assert.True(await wait);
    }

    [Fact]
    public async Task Given_a_cancelled_shutdown_When_waiting_for_the_exit_Then_the_wait_ends_at_once_saying_no_so_the_next_step_comes()
    {
        var exited = new TaskCompletionSource();

        Assert.False(await QemuMachine.ExitsWithinAsync(exited.Task, "QEMU lab-x to exit", Limit, new FakeTimeProvider(), new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task Given_a_machine_on_a_fake_clock_When_QEMU_stays_after_quit_Then_shutdown_waits_30_s_of_that_clock_and_then_kills_it()
    {
        var time = new FakeTimeProvider();
        await using var peer = await FakePeer.CreateAsync();
        var qmp = await LabKernel.Tests.Qmp.QmpEventWaitTests.ConnectAsync(peer, time);
        // A stand-in for QEMU that ignores quit: nothing boots.
        var standIn = Process.Start(new ProcessStartInfo("sleep", ["300"]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true })!;
        var options = new MachineOptions { Name = "lab-x", Drives = [new DriveSpec("/nonexistent/disk.qcow2")], GuestAgent = false, Network = false, Time = time };
        await using var machine = QemuMachine.AttachForTests(options, standIn, qmp, Path.GetTempPath());
        var sw = Stopwatch.StartNew();

        var shutdown = machine.ShutdownAsync();
        var quit = JsonNode.Parse(await peer.ReadLineAsync())!;
        Assert.Equal("quit", quit["execute"]!.GetValue<string>());
        await peer.SendAsync($$"""{"return": {}, "id": "{{quit["id"]}}"}""" + "\r\n");
        var advanced = TimeSpan.Zero;
        while (!shutdown.IsCompleted && advanced < TimeSpan.FromMinutes(5))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20));
            time.Advance(TimeSpan.FromSeconds(1));
            advanced += TimeSpan.FromSeconds(1);
        }

        Assert.Equal(ShutdownOutcome.Killed, await shutdown);
        Assert.InRange(advanced, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(45));
        // The system clock would have taken the 30 s itself.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        Assert.True(standIn.HasExited);
    }

}
