using System.Diagnostics;
using System.Globalization;
using LabKernel.GuestAgent;
using LabKernel.Host;

namespace LabKernel.Integrity;

/// <summary>How the guest writes the sequence.</summary>
public enum SequenceWriterKind
{
    /// <summary>awk with a flush every <see cref="SequenceWriterOptions.FlushEvery"/> lines (fast even under TCG).</summary>
    Awk,

    /// <summary>The source document's bash loop (<c>echo $num >> num.txt</c>): about 2,000 lines/s under TCG.</summary>
    ShellLoop,
}

/// <summary>What the guest writes: the numbers 1..Count, one per line, into <see cref="Path"/>.</summary>
public sealed record SequenceWriterOptions
{
    public string Path { get; init; } = "/root/num.txt";
    public long Count { get; init; } = 4_000_000;
    public SequenceWriterKind Kind { get; init; } = SequenceWriterKind.Awk;

    /// <summary>Lines between flushes and progress updates.</summary>
    public int FlushEvery { get; init; } = 1000;

    /// <summary>Where the writer records the last line it flushed (readable while it runs).</summary>
    public string ProgressPath => Path + ".progress";
}

/// <summary>Lines written by a given moment since the writer started.</summary>
public sealed record WriterSample(TimeSpan At, long Lines);

/// <summary>How the writer ended (<see cref="SequenceWriter.WaitForExitAsync"/>).</summary>
/// <param name="ExitCode">The guest process's exit code.</param>
/// <param name="Lines">The last line its progress file recorded as flushed.</param>
/// <param name="Count">The lines it was asked to write.</param>
/// <param name="Elapsed">Time since it started.</param>
/// <param name="Error">Its standard error when it failed.</param>
public sealed record WriterEnd(int ExitCode, long Lines, long Count, TimeSpan Elapsed, string Error)
{
    /// <summary>It exited 0 having flushed every line: what "the writer ran to the end" means.</summary>
    public bool RanToTheEnd => ExitCode == 0 && Lines == Count;

    /// <summary>One line for a finding.</summary>
    public string Summary => $"exit {ExitCode} after {Elapsed.TotalSeconds:0.0} s with {Lines:N0} of {Count:N0} lines flushed" + (Error.Length > 0 ? $": {Error}" : "");
}

/// <summary>
/// Whether an operation (a snapshot, a commit) really ran under a writing guest: the evidence that a "the writer is
/// not disturbed" finding tested something.
/// </summary>
/// <param name="Operation">What ran, for the finding's text.</param>
/// <param name="LinesBefore">Lines the writer had flushed when the operation started.</param>
/// <param name="LinesAfter">Lines it had flushed when the operation ended.</param>
/// <param name="Count">Lines it writes in all.</param>
public sealed record WriterOverlap(string Operation, long LinesBefore, long LinesAfter, long Count)
{
    /// <summary>
    /// True when the writer had started before the operation (lines flushed) and had not finished when it ended:
    /// false for an operation on an idle guest, before the writer's first line or after its last.
    /// </summary>
    public bool WritingThroughout => LinesBefore > 0 && LinesAfter >= LinesBefore && LinesAfter < Count;

    /// <summary>The claim a findings table checks.</summary>
    public string Claim => $"The guest was writing throughout the {Operation} (lines flushed before it > 0, writer not finished after it)";

    /// <summary>The evidence in one line.</summary>
    public string Summary => $"{LinesBefore:N0} lines flushed when the {Operation} started, {LinesAfter:N0} when it ended, of {Count:N0}";
}

/// <summary>
/// The integrity workload of 000_dd5fc575f1b82753.txt: a guest process writing 1..N to a file while the lab
/// snapshots, commits or mirrors underneath it. Progress is readable while it runs (a small progress file the
/// writer rewrites at each flush), so the lab can act "after N lines" without guessing with sleeps.
/// </summary>
public sealed class SequenceWriter
{
    private readonly IGuestAgent _agent;
    private readonly GuestProcess _process;
    private readonly List<WriterSample> _samples = [];
    private readonly Stopwatch _clock;

    private SequenceWriter(IGuestAgent agent, GuestProcess process, SequenceWriterOptions options, Stopwatch clock)
    {
        _agent = agent;
        _process = process;
        Options = options;
        _clock = clock;
    }

    public SequenceWriterOptions Options { get; }

    /// <summary>Progress readings taken so far (by <see cref="ReadProgressAsync"/> and the waits).</summary>
    public IReadOnlyList<WriterSample> Samples
    {
        get
        {
            lock (_samples)
            {
                return _samples.ToArray();
            }
        }
    }

    /// <summary>Time since the writer started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>The guest-side program for a writer kind (argv), with the count, file, progress file and flush interval as arguments.</summary>
    public static IReadOnlyList<string> Command(SequenceWriterOptions o)
    {
        var n = o.Count.ToString(CultureInfo.InvariantCulture);
        var k = o.FlushEvery.ToString(CultureInfo.InvariantCulture);
        return o.Kind switch
        {
            // The values are operands read from ARGV, not -v assignments: awk reads escapes (\\, \n) in a -v value, so a
            // path with a backslash would name another file. A program of BEGIN only reads no input from its operands.
            SequenceWriterKind.Awk =>
            [
                "awk",
                "BEGIN { n = ARGV[1] + 0; k = ARGV[2] + 0; f = ARGV[3]; p = ARGV[4]; printf \"\" > f; for (i = 1; i <= n; i++) { print i > f; if (i % k == 0) { fflush(f); print i > p; close(p) } } close(f); print n > p; close(p) }",
                n, k, o.Path, o.ProgressPath,
            ],
            // A failed append ends the loop with an error (the document's loop would go on and exit 0), so a writer that
            // lost lines never reports that it ran to the end.
            _ =>
            [
                "bash", "-c",
                "n=$1; f=$2; p=$3; k=$4; : > \"$f\" || exit 1; num=1; while [ $num -le $n ]; do echo $num >> \"$f\" || exit 1; if [ $((num % k)) -eq 0 ]; then echo $num > \"$p\"; fi; num=$((num+1)); done; echo $n > \"$p\"",
                "writer", n, o.Path, o.ProgressPath, k,
            ],
        };
    }

    /// <summary>Starts the writer in the guest (<c>guest-exec</c>, not waited for).</summary>
    public static async Task<SequenceWriter> StartAsync(IGuestAgent agent, SequenceWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new SequenceWriterOptions();
        if (options.Count < 1 || options.FlushEvery < 1)
        {
            throw new LabUsageException("the sequence writer needs Count >= 1 and FlushEvery >= 1");
        }
        await agent.ExecAsync(["rm", "-f", options.Path, options.ProgressPath], new GuestExecOptions { Check = true }, cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        var process = await GuestExec.StartAsync(agent, Command(options), cancellationToken: cancellationToken).ConfigureAwait(false);
        var writer = new SequenceWriter(agent, process, options, clock);
        writer.Record(0);
        return writer;
    }

    /// <summary>The last line the writer has flushed (0 before the first flush).</summary>
    /// <remarks>
    /// The writer rewrites its progress file in place (truncate, then write), so a read can land between the two
    /// and find it empty. Such a read is taken again at once (each read is an agent round trip, long enough for
    /// the writer to finish its write); if the file stays empty the last reading stands, since progress never goes
    /// back. A writer that has not written its first progress yet reads as 0.
    /// </remarks>
    public async Task<long> ReadProgressAsync(CancellationToken cancellationToken = default)
    {
        long? lines = null;
        for (var attempt = 0; attempt < 3 && lines is null; attempt++)
        {
            try
            {
                var text = System.Text.Encoding.ASCII.GetString(await _agent.ReadFileAsync(Options.ProgressPath, cancellationToken).ConfigureAwait(false)).Trim();
                lines = long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
            }
            catch (GuestAgentErrorException)
            {
                // Not created yet, or caught between the writer's close and reopen.
            }
        }
        long last;
        lock (_samples)
        {
            last = _samples.Count == 0 ? 0 : _samples[^1].Lines;
        }
        var reading = Math.Max(lines ?? last, last);
        Record(reading);
        return reading;
    }

    /// <summary>Waits until at least <paramref name="lines"/> lines are flushed, reading the progress file.</summary>
    public Task<long> WaitForLinesAsync(long lines, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Poll.UntilAsync(async ct =>
        {
            var now = await ReadProgressAsync(ct).ConfigureAwait(false);
            if (now >= lines)
            {
                return (true, now, "");
            }
            if (await _process.TryGetResultAsync(ct).ConfigureAwait(false) is { } done)
            {
                // It may have flushed its last lines, and written its final progress, after the reading above: read
                // again now that the file can no longer change.
                var final = await ReadProgressAsync(ct).ConfigureAwait(false);
                if (final >= lines)
                {
                    return (true, final, "");
                }
                throw new LabException($"the sequence writer exited ({done.ExitCode}) at {final} lines before reaching {lines}: {done.StandardError.Trim()}");
            }
            return (false, now, $"it is at {now}");
        }, $"the guest writer to reach {lines} lines", timeout, new Backoff(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(100), 1.5), cancellationToken: cancellationToken);

    /// <summary>
    /// Waits until the writer has run for <paramref name="elapsed"/> (the experiment's "snapshot after N seconds"),
    /// reading its progress meanwhile; returns the lines flushed then. Fails with a clear error when the writer
    /// ends first, since the point to act at was never reached mid-write.
    /// </summary>
    public Task<long> WaitForElapsedAsync(TimeSpan elapsed, CancellationToken cancellationToken = default)
    {
        // The limit is the time left to the point, and Poll never sleeps past its limit and asks once more at it,
        // so this wait ends at the point, never with a time-out: the writer's clock has reached it by then.
        var left = elapsed - _clock.Elapsed;
        return Poll.UntilAsync(async ct =>
        {
            var now = await ReadProgressAsync(ct).ConfigureAwait(false);
            if (_clock.Elapsed >= elapsed)
            {
                return (true, now, "");
            }
            if (await _process.TryGetResultAsync(ct).ConfigureAwait(false) is { } done)
            {
                throw new LabException($"the sequence writer ended ({done.ExitCode}) after {_clock.Elapsed.TotalSeconds:0.0} s at {now} lines, before the point at {elapsed.TotalSeconds:0.0} s: raise Count or lower the time");
            }
            return (false, now, $"it is at {now} lines after {_clock.Elapsed.TotalSeconds:0.0} s");
        }, $"the guest writer to run for {elapsed.TotalSeconds:0.0} s", left <= TimeSpan.Zero ? TimeSpan.Zero : left,
            new Backoff(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(250), 1.5), cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Waits for the writer to finish, reading its progress every <paramref name="sampleEvery"/> meanwhile (the
    /// samples are the measurement for plots); fails if it exits non-zero or runs past <paramref name="timeout"/>.
    /// </summary>
    public async Task<GuestExecResult> WaitAsync(TimeSpan timeout, TimeSpan? sampleEvery = null, CancellationToken cancellationToken = default) =>
        (await ExitAsync(timeout, sampleEvery, cancellationToken).ConfigureAwait(false)).Result.EnsureSuccess();

    /// <summary>
    /// Waits for the writer to exit, sampling its progress as <see cref="WaitAsync"/> does, and returns how it ended
    /// without throwing when it failed: the verdict "the writer ran to the end" is then data a finding can refute
    /// (killed, a write error, a short file), not a cell error.
    /// </summary>
    public async Task<WriterEnd> WaitForExitAsync(TimeSpan timeout, TimeSpan? sampleEvery = null, CancellationToken cancellationToken = default)
    {
        var (result, lines) = await ExitAsync(timeout, sampleEvery, cancellationToken).ConfigureAwait(false);
        return new WriterEnd(result.ExitCode, lines, Options.Count, _clock.Elapsed, result.Succeeded ? "" : result.StandardError.Trim().Split('\n')[^1]);
    }

    /// <summary>
    /// The one wait for the writer's exit: samples its progress until the process ends, then reads the progress file
    /// once more (the writer's own last flushed line, recorded as the final sample: how far it got).
    /// </summary>
    private async Task<(GuestExecResult Result, long Lines)> ExitAsync(TimeSpan timeout, TimeSpan? sampleEvery, CancellationToken cancellationToken)
    {
        var result = await Poll.UntilAsync(async ct =>
        {
            if (await _process.TryGetResultAsync(ct).ConfigureAwait(false) is { } done)
            {
                return (true, done, "");
            }
            await ReadProgressAsync(ct).ConfigureAwait(false);
            return (false, (GuestExecResult)null!, "");
        }, $"the guest writer of {Options.Count} lines to exit", timeout, Backoff.Every(sampleEvery ?? TimeSpan.FromMilliseconds(250)), cancellationToken: cancellationToken).ConfigureAwait(false);
        return (result, await ReadProgressAsync(cancellationToken).ConfigureAwait(false));
    }

    private void Record(long lines)
    {
        lock (_samples)
        {
            _samples.Add(new WriterSample(_clock.Elapsed, lines));
        }
    }
}
