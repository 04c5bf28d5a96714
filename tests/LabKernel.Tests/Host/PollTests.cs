using LabKernel.Host;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

public sealed class PollTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Fact]
    public async Task Given_a_probe_that_is_done_at_once_When_polling_Then_its_value_comes_back_without_a_wait()
    {
        var clock = new SteppingClock();

        var value = await Poll.UntilAsync(_ => Task.FromResult((true, 42, "")), "the answer", TimeSpan.FromSeconds(1), time: clock);

        Assert.Equal(42, value);
        Assert.Empty(clock.Delays);
    }

    [Fact]
    public async Task Given_a_probe_done_on_the_sixth_call_When_polling_Then_the_waits_double_from_the_initial_up_to_the_max()
    {
        var clock = new SteppingClock();
        var calls = 0;

        var value = await Poll.UntilAsync(_ => Task.FromResult((++calls == 6, calls, $"call {calls}")),
            "the sixth call", Timeout.InfiniteTimeSpan, new Backoff(Ms(10), Ms(80)), clock);

        Assert.Equal(6, value);
        Assert.Equal([Ms(10), Ms(20), Ms(40), Ms(80), Ms(80)], clock.Delays);
    }

    [Fact]
    public async Task Given_an_event_that_wakes_the_wait_When_it_fires_between_probes_Then_the_probe_is_asked_again_at_once_not_after_the_back_off()
    {
        // A clock that never moves: without the wake the second probe would come only after ten minutes of it.
        var clock = new FakeTimeProvider();
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;

        var value = await Poll.UntilAsync(_ =>
        {
            calls++;
            if (calls == 1)
            {
                fired.SetResult();
            }
            return Task.FromResult((fired.Task.IsCompleted && calls > 1, calls, ""));
        }, "the event", TimeSpan.FromHours(1), Backoff.Every(TimeSpan.FromMinutes(10)), clock, wake: fired.Task).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(2, value);
    }

    [Fact]
    public async Task Given_a_wake_that_never_fires_When_the_limit_passes_Then_the_wait_times_out_as_without_it()
    {
        var clock = new FakeTimeProvider();
        var never = new TaskCompletionSource().Task;

        var wait = Poll.UntilAsync(_ => Task.FromResult((false, "not yet")), "what never comes", TimeSpan.FromSeconds(5), Backoff.Every(TimeSpan.FromSeconds(1)), clock, wake: never);
        await clock.AdvanceUntilDoneAsync(wait, TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Contains("what never comes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_a_back_off_of_one_and_a_half_When_stepping_Then_the_waits_grow_by_half_and_stop_at_the_max()
    {
        var backoff = new Backoff(Ms(2), Ms(5), 1.5);

        Assert.Equal(Ms(3), backoff.Next(Ms(2)));
        Assert.Equal(Ms(4.5), backoff.Next(Ms(3)));
        Assert.Equal(Ms(5), backoff.Next(Ms(4.5)));
        Assert.Equal(Ms(7), Backoff.Every(Ms(7)).Next(Ms(7)));
        Assert.Throws<ArgumentException>(() => new Backoff(Ms(10), Ms(5)));
        Assert.Throws<ArgumentException>(() => new Backoff(Ms(1), Ms(5), 0.5));
    }

    [Fact]
    public async Task Given_a_probe_that_never_gets_there_When_the_limit_passes_Then_the_last_wait_stops_at_the_limit_and_the_error_names_what_and_the_last_status()
    {
        var clock = new SteppingClock();
        var calls = 0;

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => Poll.UntilAsync(_ => Task.FromResult((false, 0, $"still grey after {++calls} looks")),
            "the widget to turn blue", Ms(100), new Backoff(Ms(10), Ms(40)), clock));

        Assert.Equal([Ms(10), Ms(20), Ms(40), Ms(30)], clock.Delays);
        Assert.Equal(5, calls);
        Assert.Equal("the widget to turn blue", e.Awaited);
        Assert.Equal(Ms(100), e.Limit);
        Assert.Equal("timed out after 0.1 s waiting for the widget to turn blue: still grey after 5 looks", e.Message);
    }

    [Fact]
    public async Task Given_no_status_When_the_limit_passes_Then_the_error_has_no_empty_detail()
    {
        var clock = new SteppingClock();

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => Poll.UntilAsync(_ => Task.FromResult((false, "")), "the lock", Ms(20), time: clock));

        Assert.Equal("timed out after 0 s waiting for the lock", e.Message);
    }

    [Fact]
    public async Task Given_a_probe_still_on_its_way_when_the_limit_passed_When_it_says_no_Then_it_is_asked_once_more_before_the_wait_fails()
    {
        var clock = new SteppingClock();
        var calls = 0;

        var value = await Poll.UntilAsync(_ =>
        {
            calls++;
            if (calls == 1)
            {
                clock.Advance(Ms(120)); // a slow answer that started before the limit and ends past it
            }
            return Task.FromResult((calls == 2, calls, ""));
        }, "a slow answer", Ms(100), Backoff.Every(Ms(50)), clock);

        Assert.Equal(2, value);
        Assert.Empty(clock.Delays); // asked again at once: no time was left to wait
    }

    [Fact]
    public async Task Given_a_cancellation_during_the_wait_When_polling_Then_it_ends_with_a_cancellation_and_asks_no_more()
    {
        var clock = new SteppingClock();
        using var cts = new CancellationTokenSource();
        var calls = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Poll.UntilAsync(_ =>
        {
            if (++calls == 3)
            {
                cts.Cancel();
            }
            return Task.FromResult((false, ""));
        }, "never", TimeSpan.FromSeconds(10), time: clock, cancellationToken: cts.Token));

        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task Given_a_cancelled_token_When_polling_Then_the_probe_is_never_asked()
    {
        var calls = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Poll.UntilAsync(_ => Task.FromResult((++calls > 0, "")), "never",
            TimeSpan.FromSeconds(10), time: new SteppingClock(), cancellationToken: new CancellationToken(canceled: true)));

        Assert.Equal(0, calls);
    }

    [Fact]
    public async Task Given_a_probe_that_throws_When_polling_Then_its_exception_ends_the_wait_unchanged()
    {
        var clock = new SteppingClock();
        var calls = 0;

        var e = await Assert.ThrowsAsync<GuestNotRunningException>(() => Poll.UntilAsync<int>(_ =>
            ++calls == 2 ? throw new GuestNotRunningException("QEMU exited") : Task.FromResult((false, 0, "booting")),
            "the agent", TimeSpan.FromSeconds(10), time: clock));

        Assert.Equal("QEMU exited", e.Message);
        Assert.Equal([Backoff.Default.Initial], clock.Delays);
    }

    [Fact]
    public async Task Given_an_event_that_never_comes_When_awaited_until_the_limit_Then_the_waiter_is_withdrawn_and_the_error_names_what_and_the_last_seen()
    {
        var never = new TaskCompletionSource<int>();
        var withdrawn = false;

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => Poll.ForAsync(never.Task, "the job to become ready", Ms(100), () => "offset 3 of 8 MiB", () => withdrawn = true, new SteppingClock()));

        Assert.True(withdrawn);
        Assert.Equal("the job to become ready", e.Awaited);
        Assert.Equal("timed out after 0.1 s waiting for the job to become ready: offset 3 of 8 MiB", e.Message);
    }

    [Fact]
    public async Task Given_an_event_that_fails_or_comes_When_awaited_Then_its_own_exception_or_value_passes_as_it_is()
    {
        var failed = Task.FromException<int>(new LabException("job FAILED: No space left on device"));
        var withdrawn = false;

        var e = await Assert.ThrowsAsync<LabException>(() => Poll.ForAsync(failed, "the job to end", Ms(100), onTimeout: () => withdrawn = true));

        Assert.Equal("job FAILED: No space left on device", e.Message);
        Assert.False(withdrawn);
        Assert.Equal(7, await Poll.ForAsync(Task.FromResult(7), "seven", Ms(100)));
        await Poll.ForAsync(Task.CompletedTask, "nothing", Ms(100));
    }

    [Fact]
    public async Task Given_an_event_on_a_fake_clock_When_the_limit_passes_on_it_Then_the_wait_fails_at_the_limit_and_not_before()
    {
        var time = new FakeTimeProvider();
        var never = new TaskCompletionSource<int>();

        var wait = Poll.ForAsync(never.Task, "the job to end", TimeSpan.FromSeconds(30), () => "offset 1 of 2", time: time);
        time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromTicks(1));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Equal("timed out after 30 s waiting for the job to end: offset 1 of 2", e.Message);
    }

    [Fact]
    public async Task Given_an_operation_that_never_ends_by_itself_When_the_limit_passes_on_a_fake_clock_Then_it_is_cancelled_and_awaited_and_the_error_names_what()
    {
        var time = new FakeTimeProvider();
        var ended = false;

        var wait = Poll.WithinAsync(async ct =>
        {
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            }
            finally
            {
                ended = true;
            }
        }, "the agent's reply to guest-ping", TimeSpan.FromSeconds(30), () => "0 bytes", time);
        time.Advance(TimeSpan.FromSeconds(29));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.True(ended); // the operation ended before the wait did: nothing it started outlives it
        Assert.Equal("the agent's reply to guest-ping", e.Awaited);
        Assert.Equal("timed out after 30 s waiting for the agent's reply to guest-ping: 0 bytes", e.Message);
    }

    [Fact]
    public async Task Given_an_operation_whose_answer_arrives_before_the_limit_When_run_within_it_Then_its_value_comes_back()
    {
        var time = new FakeTimeProvider();
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        var wait = Poll.WithinAsync(ct => answer.Task.WaitAsync(ct), "the answer", TimeSpan.FromSeconds(30), time: time);
        time.Advance(TimeSpan.FromSeconds(20));
        answer.SetResult("42");

        Assert.Equal("42", await wait);
    }

    [Fact]
    public async Task Given_the_callers_cancellation_or_the_operations_own_error_When_run_within_a_limit_Then_they_pass_as_they_are()
    {
        var time = new FakeTimeProvider();
        using var cts = new CancellationTokenSource();

        var cancelled = Poll.WithinAsync(ct => Task.Delay(Timeout.InfiniteTimeSpan, ct), "never", TimeSpan.FromSeconds(30), time: time, cancellationToken: cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        var e = await Assert.ThrowsAsync<LabException>(() => Poll.WithinAsync<int>(_ => throw new LabException("connection lost"), "the reply", TimeSpan.FromSeconds(30), time: time));
        Assert.Equal("connection lost", e.Message);
    }
}
