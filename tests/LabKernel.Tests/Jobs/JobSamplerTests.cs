using System.Threading.Channels;
using LabKernel.Jobs;
using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Jobs;

public sealed class JobSamplerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static BlockJobProgress At(long offset, double seconds = 0, JobStatus status = JobStatus.Running) =>
        new("mirror-1", status, offset, 1000, T0.AddSeconds(seconds), "ok", "sample");

    private static (JobSampler Sampler, ChannelWriter<BlockJobProgress> Feed) Start(BlockJobProgress initial, TimeProvider? time = null)
    {
        var channel = Channel.CreateUnbounded<BlockJobProgress>();
        return (new JobSampler(ct => channel.Reader.ReadAllAsync(ct), initial, time), channel.Writer);
    }

    [Fact]
    public async Task Given_samples_arriving_When_waiting_for_a_quarter_Then_the_first_sample_past_it_comes_back_and_all_are_kept()
    {
        var (sampler, feed) = Start(At(0));
        var wait = sampler.WaitForAsync(s => s.Offset >= 250, TimeSpan.FromSeconds(10), "a quarter");

        feed.TryWrite(At(100, 1));
        feed.TryWrite(At(260, 2));
        feed.TryWrite(At(300, 3));
        var reached = await wait;
        feed.Complete();
        await sampler.DisposeAsync();

        Assert.Equal(260, reached.Offset);
        Assert.Equal([100L, 260L, 300L], sampler.Samples.Select(s => s.Offset));
    }

    [Fact]
    public async Task Given_the_latest_sample_already_satisfies_When_waiting_Then_it_comes_back_at_once()
    {
        var (sampler, feed) = Start(At(0));
        feed.TryWrite(At(500, 1));
        await sampler.WaitForAsync(s => s.Offset == 500, TimeSpan.FromSeconds(10), "the first sample");

        var again = await sampler.WaitForAsync(s => s.Offset >= 400, TimeSpan.FromSeconds(10), "400");

        Assert.Equal(500, again.Offset);
        feed.Complete();
        await sampler.DisposeAsync();
    }

    [Fact]
    public async Task Given_sampling_ends_When_a_condition_was_never_met_Then_the_wait_fails_naming_the_last_sample()
    {
        var (sampler, feed) = Start(At(0));
        var wait = sampler.WaitForAsync(s => s.Offset >= 900, TimeSpan.FromSeconds(10), "900");

        feed.TryWrite(At(100, 1));
        feed.Complete();

        var e = await Assert.ThrowsAsync<LabException>(() => wait);
        Assert.Contains("ended", e.Message);
        await Assert.ThrowsAsync<LabException>(() => sampler.WaitForAsync(s => s.Offset >= 900, TimeSpan.FromSeconds(10), "900"));
        await sampler.DisposeAsync();
    }

    [Fact]
    public async Task Given_no_sample_satisfies_When_the_limit_passes_on_the_samplers_clock_Then_a_time_out_names_what_was_awaited_and_the_last_sample()
    {
        var time = new FakeTimeProvider();
        var (sampler, feed) = Start(At(0), time);

        var wait = sampler.WaitForAsync(s => s.Offset > 500, TimeSpan.FromSeconds(10), "the job to move");
        feed.TryWrite(At(100, 1));
        await sampler.WaitForAsync(s => s.Offset == 100, TimeSpan.FromSeconds(10), "the first sample"); // the clock stands still meanwhile
        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromTicks(1));

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => wait);
        Assert.Equal("the job to move", e.Awaited);
        Assert.Equal("timed out after 10 s waiting for the job to move: last sample mirror-1 running 100/1000 (10.0 %) io=ok [sample]", e.Message);
        feed.Complete();
        await sampler.DisposeAsync();
    }

    [Fact]
    public async Task Given_a_wait_on_the_samplers_clock_When_the_sample_comes_before_the_limit_Then_it_comes_back()
    {
        var time = new FakeTimeProvider();
        var (sampler, feed) = Start(At(0), time);

        var wait = sampler.WaitForAsync(s => s.Offset >= 250, TimeSpan.FromSeconds(10), "a quarter");
        time.Advance(TimeSpan.FromSeconds(9));
        feed.TryWrite(At(300, 9));

        Assert.Equal(300, (await wait).Offset);
        feed.Complete();
        await sampler.DisposeAsync();
    }

    [Fact]
    public async Task Given_a_sampler_still_running_When_disposed_Then_it_stops_without_error()
    {
        var (sampler, _) = Start(At(0));

        await sampler.DisposeAsync();

        Assert.Empty(sampler.Samples);
    }
}
