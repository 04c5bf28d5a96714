using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

/// <summary>
/// <c>lab run --log-output</c>'s line for a cell that runs long without output (<see cref="QuietCellProgress"/>): a
/// plain line each interval of silence on a log, a live line rewritten in place on a terminal. The clock is a
/// manual one: no test waits.
/// </summary>
public sealed class QuietCellProgressTests
{
    [Fact]
    public void Given_a_log_that_is_not_a_terminal_When_a_cell_runs_long_without_output_Then_a_plain_line_names_the_cell_and_its_elapsed_time_each_interval_of_silence()
    {
        var clock = new ManualClock();
        var log = new StringWriter { NewLine = "\n" };
        using var quiet = new QuietCellProgress(log, live: false, clock, TimeSpan.FromSeconds(60));

        quiet.CellStarted(3, "await lab.CheckAsync(overlay1);");
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("", log.ToString());
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("[cell 3] still running after 1 min 0 s, no output for 1 min 0 s: await lab.CheckAsync(overlay1);\n", log.ToString());

        // Output restarts the silence: the next line comes a full interval after it.
        clock.Advance(TimeSpan.FromSeconds(30));
        quiet.WriteLine("[cell 3] checked");
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.EndsWith("[cell 3] checked\n", log.ToString(), StringComparison.Ordinal);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.EndsWith("[cell 3] checked\n[cell 3] still running after 2 min 30 s, no output for 1 min 0 s: await lab.CheckAsync(overlay1);\n", log.ToString(), StringComparison.Ordinal);

        // An ended cell says nothing more; the next one is timed from its own start.
        quiet.CellFinished();
        var before = log.ToString();
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(before, log.ToString());
        quiet.CellStarted(4, new string('x', 80));
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.EndsWith($"[cell 4] still running after 1 min 0 s, no output for 1 min 0 s: {new string('x', 60)}…\n", log.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain('\r', log.ToString());
    }

    [Fact]
    public void Given_a_terminal_When_a_cell_runs_long_without_output_Then_one_live_line_is_rewritten_in_place_and_erased_before_output_and_at_the_end()
    {
        var clock = new ManualClock();
        var log = new StringWriter { NewLine = "\n" };
        using var quiet = new QuietCellProgress(log, live: true, clock);
        const string Erase = "\r\u001b[2K";

        quiet.CellStarted(2, "Thread.Sleep(600_000);");
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("", log.ToString());
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal($"{Erase}[cell 2] running 2 s: Thread.Sleep(600_000);{Erase}[cell 2] running 3 s: Thread.Sleep(600_000);", log.ToString());

        quiet.WriteLine("[cell 2] woke");
        Assert.EndsWith($"[cell 2] running 3 s: Thread.Sleep(600_000);{Erase}[cell 2] woke\n", log.ToString(), StringComparison.Ordinal);
        clock.Advance(TimeSpan.FromSeconds(90));
        Assert.EndsWith($"{Erase}[cell 2] running 1 min 33 s: Thread.Sleep(600_000);", log.ToString(), StringComparison.Ordinal);

        quiet.CellFinished();
        Assert.EndsWith($"[cell 2] running 1 min 33 s: Thread.Sleep(600_000);{Erase}", log.ToString(), StringComparison.Ordinal);
        var before = log.ToString();
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(before, log.ToString());
    }

    /// <summary>A clock that moves only when told; its timers fire, in order, as it passes their due times.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private readonly List<ManualTimer> _timers = [];
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(_ticks);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new ManualTimer(this, callback, state);
            timer.Change(dueTime, period);
            _timers.Add(timer);
            return timer;
        }

        public void Advance(TimeSpan by)
        {
            var end = _ticks + by.Ticks;
            while (_timers.Where(t => t.Due is { } due && due <= end).MinBy(t => t.Due) is { } next)
            {
                _ticks = next.Due!.Value;
                next.Fire();
            }
            _ticks = end;
        }

        private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
        {
            private long _period;

            public long? Due { get; private set; }

            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : clock._ticks + dueTime.Ticks;
                _period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
                return true;
            }

            public void Fire()
            {
                Due = _period > 0 ? Due + _period : null;
                callback(state);
            }

            public void Dispose() => Due = null;

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
