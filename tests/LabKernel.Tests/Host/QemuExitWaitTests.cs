using LabKernel.Machines;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

/// <summary>A shutdown's wait for QEMU to exit (<c>QemuMachine</c>'s one wait), on a fake clock.</summary>
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
}
