using System.Globalization;
using System.Text.Json;
using LabKernel.GuestAgent;

namespace LabKernel.Io;

/// <summary>
/// One fio job, as the documents run them (<c>direct=1</c>, <c>ioengine=libaio</c>, 4k blocks): what to do, on
/// which file or device, for how long. <see cref="Arguments"/> turns it into fio's command line.
/// </summary>
public sealed record FioJob
{
    /// <summary>The job's name in fio's report.</summary>
    public string Name { get; init; } = "lab";

    /// <summary>A file or block device in the guest.</summary>
    public required string Filename { get; init; }

    /// <summary>read, write, randread, randwrite, rw or randrw.</summary>
    public string ReadWrite { get; init; } = "randwrite";

    public string BlockSize { get; init; } = "4k";

    /// <summary>How much of the file to use (fio's <c>size</c>), e.g. <c>256M</c>.</summary>
    public string Size { get; init; } = "256M";

    /// <summary>Run for this long (time-based), or null to run through <see cref="Size"/> once.</summary>
    public TimeSpan? Runtime { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>O_DIRECT: bypass the guest's page cache, so the disk (and its chain) is what is measured.</summary>
    public bool Direct { get; init; } = true;

    public string IoEngine { get; init; } = "libaio";

    public int IoDepth { get; init; } = 1;

    public int NumJobs { get; init; } = 1;

    /// <summary>
    /// With a <see cref="Runtime"/>: run for all of it, going over the file again (<c>--time_based</c>). False: stop
    /// at <see cref="Size"/> or at the runtime, whichever comes first (a job file's <c>timeout=</c>).
    /// </summary>
    public bool TimeBased { get; init; } = true;

    /// <summary>
    /// fio's <c>--readonly</c>: fio refuses to write, so a read job over an existing file never lays it out anew (which
    /// would put fresh data in the active layer instead of reading the data where it lies).
    /// </summary>
    public bool ReadOnly { get; init; }

    private static readonly string[] Modes = ["read", "write", "randread", "randwrite", "rw", "readwrite", "randrw"];

    /// <summary>fio's arguments for this job, JSON output.</summary>
    public IReadOnlyList<string> Arguments()
    {
        if (!Modes.Contains(ReadWrite))
        {
            throw new LabUsageException($"fio rw must be one of {string.Join(", ", Modes)}, not '{ReadWrite}'");
        }
        if (IoDepth < 1 || NumJobs < 1)
        {
            throw new LabUsageException("fio iodepth and numjobs must be at least 1");
        }
        var args = new List<string>
        {
            "fio", $"--name={Name}", $"--filename={Filename}", $"--rw={ReadWrite}", $"--bs={BlockSize}", $"--size={Size}",
            $"--direct={(Direct ? 1 : 0)}", $"--ioengine={IoEngine}", $"--iodepth={IoDepth.ToString(CultureInfo.InvariantCulture)}",
            $"--numjobs={NumJobs.ToString(CultureInfo.InvariantCulture)}", "--group_reporting", "--output-format=json",
        };
        if (ReadOnly)
        {
            args.Add("--readonly");
        }
        if (Runtime is { } r)
        {
            args.Add($"--runtime={Math.Max(1, (int)Math.Ceiling(r.TotalSeconds)).ToString(CultureInfo.InvariantCulture)}");
            if (TimeBased)
            {
                args.Add("--time_based");
            }
        }
        return args;
    }
}

/// <summary>One direction (read or write) of a fio job's result.</summary>
/// <param name="Bytes">Bytes moved.</param>
/// <param name="BytesPerSecond">Bandwidth.</param>
/// <param name="Iops">I/O operations per second.</param>
/// <param name="Ios">Operations completed.</param>
/// <param name="Runtime">How long this direction ran.</param>
/// <param name="MeanLatency">Mean completion latency.</param>
/// <param name="P50Latency">Median completion latency (null when fio reported no percentiles).</param>
/// <param name="P99Latency">99th-percentile completion latency.</param>
public sealed record FioIo(long Bytes, long BytesPerSecond, double Iops, long Ios, TimeSpan Runtime, TimeSpan MeanLatency, TimeSpan? P50Latency, TimeSpan? P99Latency)
{
    public bool Ran => Ios > 0;

    /// <summary>
    /// The share of its runtime limit a job must have run, if it moved less than its size, to count as ended by the
    /// limit (fio reports the runtime in ms, at or just past the limit) rather than cut short.
    /// </summary>
    public const double RuntimeShare = 0.95;

    /// <summary>
    /// The direction ended where fio ends a job that is not time-based: it moved its whole <paramref name="size"/>, or
    /// it ran for its <paramref name="runtime"/> limit (at least <see cref="RuntimeShare"/> of it). A job cut short (its
    /// file or disk gone mid-run, a guest that stalled) did neither. For a job of one direction (read or write).
    /// </summary>
    public bool RanToItsEnd(long size, TimeSpan runtime) => Bytes >= size || Runtime >= runtime * RuntimeShare;
}

/// <summary>A fio job's result (with <c>--group_reporting</c>, one per job name).</summary>
public sealed record FioJobResult(string Name, int Error, FioIo Read, FioIo Write);

/// <summary>fio's JSON report, parsed.</summary>
public sealed record FioResult(string Version, IReadOnlyList<FioJobResult> Jobs)
{
    /// <summary>The single job's result (the lab runs one job per fio call).</summary>
    public FioJobResult Job => Jobs.Count == 1 ? Jobs[0] : throw new LabException($"fio reported {Jobs.Count} jobs, not one");

    /// <summary>
    /// Parses fio's <c>--output-format=json</c> output. fio may print warnings before the JSON; they are skipped.
    /// Anything that is not a fio report gives a one-line <see cref="LabException"/> quoting its start.
    /// </summary>
    public static FioResult Parse(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var start = output.IndexOf("{\n", StringComparison.Ordinal) is var i and >= 0 ? i : output.IndexOf('{');
        if (start < 0)
        {
            throw new LabException($"fio printed no JSON report: {Shorten(output)}");
        }
        try
        {
            using var doc = JsonDocument.Parse(output.AsMemory(start));
            var root = doc.RootElement;
            var version = root.TryGetProperty("fio version", out var v) ? v.GetString() ?? "" : "";
            var jobs = root.GetProperty("jobs").EnumerateArray().Select(j => new FioJobResult(
                j.GetProperty("jobname").GetString() ?? "",
                j.TryGetProperty("error", out var e) ? e.GetInt32() : 0,
                Io(j.GetProperty("read")),
                Io(j.GetProperty("write")))).ToArray();
            return new FioResult(version, jobs);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new LabException($"fio's report could not be read ({e.Message}): {Shorten(output[start..])}");
        }
    }

    private static FioIo Io(JsonElement d)
    {
        TimeSpan Ns(double ns) => TimeSpan.FromTicks((long)(ns / 100));
        TimeSpan? Percentile(JsonElement clat, string p) =>
            clat.TryGetProperty("percentile", out var ps) && ps.TryGetProperty(p, out var x) ? Ns(x.GetDouble()) : null;
        var clat = d.GetProperty("clat_ns");
        return new FioIo(
            d.GetProperty("io_bytes").GetInt64(),
            d.GetProperty("bw_bytes").GetInt64(),
            d.GetProperty("iops").GetDouble(),
            d.GetProperty("total_ios").GetInt64(),
            TimeSpan.FromMilliseconds(d.GetProperty("runtime").GetInt64()),
            Ns(clat.GetProperty("mean").GetDouble()),
            Percentile(clat, "50.000000"),
            Percentile(clat, "99.000000"));
    }

    private static string Shorten(string s)
    {
        var line = s.Trim().ReplaceLineEndings(" ");
        return line.Length <= 200 ? line : line[..200] + "…";
    }
}

/// <summary>Runs fio in a guest (through the agent or SSH) and parses its report.</summary>
public static class Fio
{
    /// <summary>
    /// Runs <paramref name="job"/> in the guest and returns fio's parsed report. A non-zero exit or a job error gives
    /// a one-line error with fio's own words; the time limit is the job's runtime plus <paramref name="slack"/>.
    /// </summary>
    public static async Task<FioResult> RunAsync(IGuestShell guest, FioJob job, TimeSpan? slack = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(job);
        var limit = (job.Runtime ?? TimeSpan.FromMinutes(10)) + (slack ?? TimeSpan.FromMinutes(2));
        var r = await guest.ExecAsync(job.Arguments(), new GuestExecOptions { Timeout = limit }, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            throw new LabException($"fio {job.Name} on {job.Filename} exited with {r.ExitCode}: {FirstLine(r.StandardError, r.StandardOutput)}");
        }
        var result = FioResult.Parse(r.StandardOutput);
        if (result.Jobs.FirstOrDefault(j => j.Error != 0) is { } failed)
        {
            throw new LabException($"fio job {failed.Name} on {job.Filename} reported error {failed.Error}: {FirstLine(r.StandardError, "")}");
        }
        return result;
    }

    private static string FirstLine(string a, string b)
    {
        var text = string.IsNullOrWhiteSpace(a) ? b : a;
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "(no output)";
    }
}
