using LabKernel.Host;

namespace LabKernel.Tests.Host;

/// <summary>
/// The exit clean-up runs each hook once, newest first, and a second caller (a SIGTERM arriving while the process
/// is already ending) does not return before the first has finished: the runtime ends the process when the signal
/// handler returns.
/// </summary>
public sealed class ExitHookListTests
{
    [Fact]
    public async Task Given_a_clean_up_in_progress_When_a_second_caller_runs_the_hooks_Then_it_returns_only_after_the_clean_up_finished()
    {
        var hooks = new ExitHookList();
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var finished = 0;
        hooks.Register("slow domain", () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30));
            Interlocked.Exchange(ref finished, 1);
        });
        var first = Task.Run(hooks.RunAll);
        Assert.True(entered.Wait(TimeSpan.FromSeconds(30)), "the first caller never ran the hook");

        var second = Task.Run(hooks.RunAll);
        var early = await Task.WhenAny(second, Task.Delay(TimeSpan.FromMilliseconds(500)));
        Assert.NotSame(second, early);
        release.Set();
        await second.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, Volatile.Read(ref finished));
        await first.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Given_hooks_When_run_twice_Then_each_runs_once_newest_first_and_a_failing_one_does_not_stop_the_rest()
    {
        var hooks = new ExitHookList();
        var order = new List<string>();
        hooks.Register("a", () => order.Add("a"));
        hooks.Register("b", () => throw new InvalidOperationException("b failed"));
        hooks.Register("c", () => order.Add("c"));
        using (hooks.Register("removed", () => order.Add("removed")))
        {
        }

        hooks.RunAll();
        hooks.RunAll();

        Assert.Equal(["c", "a"], order);
        Assert.Equal(0, hooks.Count);
    }
}
