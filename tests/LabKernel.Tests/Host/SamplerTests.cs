using System.Threading.Channels;
using LabKernel.Host;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

/// <summary>
/// The one sampler behind the pause measurements (guest-agent pings, libvirt's domain state): each answer kept with
/// the time it came, a failed read kept as a gap, and a stop that waits for a reading begun after it.
/// </summary>
public sealed class SamplerTests
{
    /// <summary>A read the test answers by hand: each call shows up in <see cref="NextAsync"/> with its answer to give.</summary>
    private sealed class ScriptedRead
    {
        private readonly Channel<TaskCompletionSource<bool>> _started = Channel.CreateUnbounded<TaskCompletionSource<bool>>();

        public Task<bool> ReadAsync(CancellationToken cancellationToken)
        {
            var answer = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            cancellationToken.Register(() => answer.TrySetCanceled(cancellationToken));
            _started.Writer.TryWrite(answer);
            return answer.Task;
        }

        /// <summary>The next read the sampler began.</summary>
        public async Task<TaskCompletionSource<bool>> NextAsync() =>
            await _started.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30), TimeProvider.System);
    }

    [Fact]
    public async Task Given_answers_at_known_times_and_a_failed_read_Then_each_answer_is_kept_at_the_time_it_came_and_the_failure_leaves_a_gap()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        var read = new ScriptedRead();
        using var sampler = new Sampler<bool>(read.ReadAsync, "the test's value", time);
        var t0 = sampler.Now;

        (await read.NextAsync()).SetResult(false);
        await sampler.ReadyAsync(TimeSpan.FromMinutes(1));
        await time.AdvanceUntilDoneAsync(read.NextAsync().ContinueWith(t =>
        {
            t.Result.SetException(new LabException("domain is not running"));
        }, TaskScheduler.Default), TimeSpan.FromMilliseconds(20));
        await time.AdvanceUntilDoneAsync(read.NextAsync().ContinueWith(t => t.Result.SetResult(true), TaskScheduler.Default), TimeSpan.FromMilliseconds(20));

        await Poll.UntilAsync(_ => Task.FromResult((sampler.Readings.Count == 2, $"{sampler.Readings.Count} readings")), "the second reading", TimeSpan.FromSeconds(30));
        var readings = sampler.Readings;
        Assert.Equal(new Reading<bool>(t0, false), readings[0]);
        Assert.True(readings[1].Value);
        // Two ticks of 20 ms on the sampler's clock: the failed read's tick left nothing.
        Assert.True(readings[1].At - t0 >= TimeSpan.FromMilliseconds(40), $"the reading after the failed one came at {(readings[1].At - t0).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Given_a_read_in_flight_when_stopped_Then_the_stop_waits_for_a_reading_begun_after_it()
    {
        var read = new ScriptedRead();
        using var sampler = new Sampler<bool>(read.ReadAsync, "the test's value", interval: TimeSpan.FromMilliseconds(1));
        (await read.NextAsync()).SetResult(true);
        await sampler.ReadyAsync(TimeSpan.FromMinutes(1));
        var inFlight = await read.NextAsync();

        var stop = sampler.StopAsync(TimeSpan.FromMinutes(1));
        inFlight.SetResult(true);            // begun before the stop: the operation may not have ended when it was asked
        var after = await read.NextAsync();
        Assert.False(stop.IsCompleted);
        after.SetResult(false);

        var readings = await stop;
        Assert.Equal([true, true, false], readings.Select(r => r.Value));
    }

    [Fact]
    public async Task Given_reads_that_never_answer_When_the_first_reading_is_awaited_Then_the_time_out_names_it()
    {
        var time = new FakeTimeProvider();
        using var sampler = new Sampler<bool>(_ => throw new LabException("no agent"), "the guest agent's answer to a guest-ping", time);

        var ready = sampler.ReadyAsync(TimeSpan.FromMinutes(2));
        await time.AdvanceUntilDoneAsync(ready.ContinueWith(_ => { }, TaskScheduler.Default), TimeSpan.FromSeconds(1), steps: 200);

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => ready);
        Assert.Equal("the first reading of the guest agent's answer to a guest-ping", e.Awaited);
        Assert.Empty(sampler.Readings);
    }

    [Fact]
    public async Task Given_a_read_that_fails_other_than_a_lab_error_Then_the_wait_for_the_first_reading_passes_it_on()
    {
        using var sampler = new Sampler<bool>(_ => throw new InvalidOperationException("a bug"), "the test's value");

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => sampler.ReadyAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal("a bug", e.Message);
    }
}
