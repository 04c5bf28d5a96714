using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel;
using LabRunner.Notebooks;
using LabRunner.Reporting;

namespace LabRunner.Commands;

/// <summary>
/// Runs every combination of a sweep's matrix as one <c>lab run</c> of the notebook (the same
/// <see cref="NotebookRunner"/>, in this process; each run's kernel is its own child process, its working directory
/// its own run folder), at most as many at once as there are slots (<c>-j N</c> embedded slots, or each host's jobs),
/// and writes <c>runs/ID/result.json</c> when a run ends, then <c>sweep.json</c>, <c>results.jsonl</c> and
/// <c>sweep.html</c> (with a chart per measurement against <see cref="PlotX"/>). Combinations
/// whose record says ok or refuted are skipped (resume); the others are run again from a clean folder.
/// </summary>
internal sealed class SweepRunner
{
    public const string Embedded = "embedded";
    public const string NotebookFile = "notebook.ipynb";
    public const string ReportFile = "report.html";
    public const string LogFile = "run.log";
    public const string ResultFile = "result.json";
    public const string ResultsLines = "results.jsonl";

    // Written for people too: "+00:00" and "it's" as they are, not \u002B and \u0027.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly object _consoleLock = new();
    private readonly SlotPool _slots;
    private int _started;

    public SweepRunner(IReadOnlyList<SweepHost>? hosts, int jobs)
    {
        Hosts = hosts;
        _slots = new SlotPool(hosts is null
            ? Enumerable.Repeat(Embedded, jobs)
            : hosts.SelectMany(h => Enumerable.Repeat(h.Uri, h.Jobs)));
    }

    public required string NotebookPath { get; init; }

    public required string Directory { get; init; }

    public required IReadOnlyList<SweepAxis> Axes { get; init; }

    public required IReadOnlyList<SweepCombination> Combinations { get; init; }

    public IReadOnlyList<SweepHost>? Hosts { get; }

    /// <summary>The matrix axis sweep.html plots each measurement against (<c>--plot-x</c>, or <see cref="SweepReport.DefaultPlotX"/>).</summary>
    public string? PlotX { get; init; }

    /// <summary>The sweep's Ctrl-C and SIGTERM, shared by its runs: a signal stops every running one as it stops <c>lab run</c>.</summary>
    public required RunInterruption Interruption { get; init; }

    public TextWriter Log { get; init; } = Console.Error;

    public string RunFolder(SweepCombination c) => Path.Combine(Directory, "runs", c.Id);

    public async Task<int> RunAsync()
    {
        var started = DateTimeOffset.UtcNow;
        var pending = Combinations.Where(c => !IsFinished(ReadResult(RunFolder(c)))).ToList();
        Say($"lab sweep: {Combinations.Count} combinations, {Combinations.Count - pending.Count} already finished, {pending.Count} to run on {_slots.Count} slot{(_slots.Count == 1 ? "" : "s")} ({string.Join(", ", _slots.Hosts.Distinct())}); {Directory}");
        var running = new List<Task>();
        foreach (var combination in pending)
        {
            if (Interruption.IsRequested)
            {
                break;
            }
            string slot;
            try
            {
                slot = await _slots.AcquireAsync(_ => true, Interruption.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            running.Add(Task.Run(() => RunCombinationAsync(combination, slot)));
        }
        await Task.WhenAll(running).ConfigureAwait(false);
        var summary = WriteSummary(started);
        var exit = summary["exit_code"]!.GetValue<int>();
        Say($"lab sweep: {summary["counts"]!.ToJsonString()} (exit {exit}); wrote {Path.Combine(Directory, "sweep.json")}, {Path.Combine(Directory, ResultsLines)}, {Path.Combine(Directory, "sweep.html")}");
        return exit;
    }

    private async Task RunCombinationAsync(SweepCombination combination, string slot)
    {
        JsonObject result;
        try
        {
            result = await RunOnceAsync(combination, slot, retryOf: null, retryBecause: null).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release(slot);
        }
        // A run that failed because its host did (not because the notebook refuted a claim) gets one more try on
        // another host, when the sweep has one.
        if (result["host_failed"]?.GetValue<bool>() == true && Hosts is { } hosts && hosts.Any(h => h.Uri != slot) && !Interruption.IsRequested)
        {
            string other;
            try
            {
                other = await _slots.AcquireAsync(s => s != slot, Interruption.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await RunOnceAsync(combination, other, retryOf: slot, retryBecause: result["error"]?.GetValue<string>()).ConfigureAwait(false);
            }
            finally
            {
                _slots.Release(other);
            }
        }
    }

    private async Task<JsonObject> RunOnceAsync(SweepCombination combination, string host, string? retryOf, string? retryBecause)
    {
        var folder = RunFolder(combination);
        if (retryOf is not null)
        {
            KeepFailedAttempt(folder);
        }
        CleanRunFolder(folder);
        System.IO.Directory.CreateDirectory(folder);
        var number = Interlocked.Increment(ref _started);
        Say($"lab sweep: [{number}] {combination.Id} on {host}{(retryOf is null ? "" : $" (retry: {retryOf} failed{(retryBecause is null ? "" : $": {retryBecause.Split('\n')[0]}")})")}");
        var parameters = combination.Parameters.ToList();
        var environment = new Dictionary<string, string>();
        if (host != Embedded)
        {
            parameters.Add(("Backend", "libvirt"));
            parameters.Add(("LibvirtUri", host));
            var entry = Hosts?.FirstOrDefault(h => h.Uri == host);
            if (entry?.Domain is { } domain)
            {
                parameters.Add(("Domain", domain));
            }
            if (entry?.HostFolder is { } hostFolder)
            {
                parameters.Add(("HostFolder", hostFolder));
            }
            if (entry?.ReconnectSeconds is { } reconnect)
            {
                environment[LabKernel.Libvirt.LibvirtConnection.ReconnectVariable] = reconnect.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        var notebookPath = Path.Combine(folder, NotebookFile);
        var started = DateTimeOffset.UtcNow;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int exitCode;
        string runStatus;
        string? error = null;
        await using (var log = new StreamWriter(Path.Combine(folder, LogFile), append: false, new UTF8Encoding(false)) { AutoFlush = true })
        {
            try
            {
                var runner = new NotebookRunner { Interruption = Interruption, WriteReport = (notebook, path) => HtmlReport.Write(notebook, path) };
                await using var progress = new PlainProgress(log);
                var outcome = await runner.RunAsync(new RunOptions
                {
                    InputPath = NotebookPath,
                    OutputPath = notebookPath,
                    ReportPath = Path.Combine(folder, ReportFile),
                    Parameters = parameters,
                    WorkingDirectory = folder,
                    Environment = environment,
                }, progress).ConfigureAwait(false);
                exitCode = outcome.ExitCode;
                runStatus = outcome.Status;
            }
            catch (LabException e)
            {
                exitCode = e is LabUsageException ? RunExitCodes.UsageError : RunExitCodes.CellFailed;
                runStatus = "failed";
                error = $"{e.GetType().Name}: {e.Message}";
                await log.WriteLineAsync("lab run: " + error).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                exitCode = RunExitCodes.CellFailed;
                runStatus = "failed";
                error = $"{e.GetType().Name}: {e.Message}";
                await log.WriteLineAsync("lab run: " + error).ConfigureAwait(false);
            }
        }
        var finished = DateTimeOffset.UtcNow;
        var status = runStatus switch
        {
            "ok" => "ok",
            "refuted" => "refuted",
            "interrupted" => "interrupted",
            _ => "failed",
        };
        var executed = TryRead(notebookPath);
        var lab = executed?.LabMetadata;
        var findings = executed is null ? null : FindingsSummary.From(executed);
        var result = new JsonObject
        {
            ["id"] = combination.Id,
            ["index"] = combination.Index,
            ["parameters"] = SweepMatrix.ToJson(combination.Parameters),
            ["injected"] = SweepMatrix.ToJson(parameters),
            ["host"] = host,
            ["retry_of"] = retryOf,
            // Why the attempt on that host failed: the record of the attempt is replaced by this one's.
            ["retry_because"] = retryBecause,
            ["status"] = status,
            ["run_status"] = runStatus,
            ["exit_code"] = exitCode,
            ["error"] = error ?? FailedCellError(executed),
            ["host_failed"] = status == "failed" && host != Embedded && IsHostFailure(error, executed),
            ["started"] = Iso(started),
            ["finished"] = Iso(finished),
            ["duration"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            ["versions"] = new JsonObject
            {
                ["lab"] = Str(lab?["lab_version"]) ?? RunEnvironment.LabVersion,
                ["qemu"] = Str(lab?["qemu_version"]),
                ["libvirt"] = Str(lab?["libvirt_version"]),
                ["kernel"] = HostKernel(),
                ["os"] = Str(lab?["os"]),
                ["dotnet"] = Str(lab?["dotnet"]),
            },
            ["accelerator"] = Str(lab?["accelerator"]),
            ["findings"] = new JsonArray([.. (findings?.Rows ?? []).Select(r => (JsonNode)new JsonObject
            {
                ["claim"] = r.Claim,
                ["observed"] = r.Observed,
                ["verdict"] = r.VerdictText,
                ["unexpected"] = r.IsUnexpectedRefutation,
            })]),
            // The numbers the run measured, one member per name, so that a sweep's records line up as columns.
            ["measurements"] = MeasurementJson.Values(findings?.Measurements ?? []),
            ["units"] = MeasurementJson.Units(findings?.Measurements ?? []),
            ["notebook"] = File.Exists(notebookPath) ? NotebookFile : null,
            ["report"] = File.Exists(Path.Combine(folder, ReportFile)) ? ReportFile : null,
        };
        WriteAtomically(Path.Combine(folder, ResultFile), result);
        Say($"lab sweep: [{number}] {combination.Id}: {status} (exit {exitCode}, {clock.Elapsed.TotalSeconds:0.0} s)");
        return result;
    }

    /// <summary>Removes what the sweep writes in a run folder (and nothing else), so a run starts from scratch.</summary>
    /// <summary>
    /// Before a retry: the failed attempt's log and executed notebook stay beside the new run's, as
    /// <c>failed-attempt-N.log</c> and <c>failed-attempt-N.ipynb</c> (why the host failed is in them).
    /// </summary>
    internal static void KeepFailedAttempt(string folder)
    {
        if (!System.IO.Directory.Exists(folder))
        {
            return;
        }
        var n = System.IO.Directory.EnumerateFiles(folder, "failed-attempt-*.log").Count() + 1;
        foreach (var (name, kept) in new[] { (LogFile, $"failed-attempt-{n}.log"), (NotebookFile, $"failed-attempt-{n}.ipynb") })
        {
            var from = Path.Combine(folder, name);
            if (File.Exists(from))
            {
                File.Move(from, Path.Combine(folder, kept), overwrite: true);
            }
        }
    }

    internal static void CleanRunFolder(string folder)
    {
        if (!System.IO.Directory.Exists(folder))
        {
            return;
        }
        foreach (var name in new[] { NotebookFile, ReportFile, LogFile, ResultFile, ResultFile + ".tmp" })
        {
            File.Delete(Path.Combine(folder, name));
        }
        // The executed notebook's own temporary files (NotebookWriter: NAME.PID.tmp), left by a killed run.
        foreach (var tmp in System.IO.Directory.EnumerateFiles(folder, NotebookFile + ".*.tmp"))
        {
            File.Delete(tmp);
        }
    }

    /// <summary>The record of a run folder; null when it has none or it cannot be read (a run to do again).</summary>
    internal static JsonObject? ReadResult(string folder)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(Path.Combine(folder, ResultFile))) as JsonObject;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    internal static bool IsFinished(JsonObject? result) => Str(result?["status"]) is "ok" or "refuted";

    /// <summary>
    /// Writes sweep.json, results.jsonl and sweep.html from every run folder's record, and returns sweep.json's content.
    /// </summary>
    private JsonObject WriteSummary(DateTimeOffset started)
    {
        var runs = new JsonArray();
        var units = new JsonObject();
        var counts = new Dictionary<string, int> { ["ok"] = 0, ["refuted"] = 0, ["failed"] = 0, ["interrupted"] = 0, ["not-run"] = 0 };
        foreach (var c in Combinations)
        {
            var r = ReadResult(RunFolder(c));
            var status = Str(r?["status"]) ?? "not-run";
            counts[status] = counts.GetValueOrDefault(status) + 1;
            var verdicts = new JsonObject();
            foreach (var f in (r?["findings"] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (Str(f["claim"]) is { } claim)
                {
                    verdicts[claim] = Str(f["verdict"]);
                }
            }
            var unexpected = (r?["findings"] as JsonArray ?? []).OfType<JsonObject>().Count(f => f["unexpected"]?.GetValue<bool>() == true);
            // Records written before measurements existed have none; a unit is the same in every run, so it is said once.
            foreach (var (name, unit) in r?["units"] as JsonObject ?? [])
            {
                if (!units.ContainsKey(name) && Str(unit) is { } text)
                {
                    units[name] = text;
                }
            }
            runs.Add(new JsonObject
            {
                ["id"] = c.Id,
                ["parameters"] = SweepMatrix.ToJson(c.Parameters),
                ["status"] = status,
                ["exit_code"] = r?["exit_code"]?.DeepClone(),
                ["host"] = r?["host"]?.DeepClone(),
                ["started"] = r?["started"]?.DeepClone(),
                ["duration"] = r?["duration"]?.DeepClone(),
                ["accelerator"] = r?["accelerator"]?.DeepClone(),
                ["unexpected_refutations"] = unexpected,
                ["error"] = r?["error"]?.DeepClone(),
                ["findings"] = verdicts,
                ["measurements"] = (r?["measurements"] as JsonObject)?.DeepClone() ?? new JsonObject(),
                ["folder"] = r is null ? null : $"runs/{c.Id}",
            });
        }
        var interrupted = Interruption.IsRequested;
        var exit = interrupted ? Interruption.ExitCode
            : counts["failed"] + counts["interrupted"] + counts["not-run"] > 0 ? RunExitCodes.CellFailed
            : counts["refuted"] > 0 ? RunExitCodes.RefutedFinding
            : RunExitCodes.Success;
        var matrix = new JsonObject();
        foreach (var axis in Axes)
        {
            matrix[axis.Name] = new JsonArray([.. axis.Values.Select(v => (JsonNode)JsonValue.Create(v))]);
        }
        var summary = new JsonObject
        {
            ["notebook"] = NotebookPath,
            ["matrix"] = matrix,
            ["hosts"] = Hosts is null ? null : new JsonArray([.. Hosts.Select(h => (JsonNode)new JsonObject { ["uri"] = h.Uri, ["jobs"] = h.Jobs })]),
            ["slots"] = _slots.Count,
            ["started"] = Iso(started),
            ["finished"] = Iso(DateTimeOffset.UtcNow),
            ["status"] = interrupted ? "interrupted" : "finished",
            ["exit_code"] = exit,
            ["lab_version"] = RunEnvironment.LabVersion,
            ["counts"] = new JsonObject(counts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["plot_x"] = PlotX ?? SweepReport.DefaultPlotX(Axes),
            ["units"] = units,
            ["runs"] = runs,
        };
        WriteAtomically(Path.Combine(Directory, "sweep.json"), summary);
        WriteLinesAtomically(Path.Combine(Directory, ResultsLines), runs.OfType<JsonObject>());
        SweepReport.Write(summary, Path.Combine(Directory, "sweep.html"));
        return summary;
    }

    private static readonly string[] HostFailureMarks = ["LibvirtConnectionException", "virConnectOpen", "LibvirtConnectionLostException", "GuestSshException"];

    private static bool IsHostFailure(string? error, Notebook? executed)
    {
        // The host failed when libvirt could not be reached (LibvirtConnectionException, "virConnectOpen"), when its
        // libvirtd went away mid-run and did not come back (LibvirtConnectionLostException), or when SSH to its files
        // failed (GuestSshException: SshHost shares the lab's SSH connection code), whatever cell hit it; a refuted claim
        // or an ordinary exception is the notebook's result, not the host's.
        var text = (error ?? "") + "\n" + FailedCellError(executed);
        return HostFailureMarks.Any(m => text.Contains(m, StringComparison.Ordinal));
    }

    private static string? FailedCellError(Notebook? executed)
    {
        var error = executed?.Cells.SelectMany(c => c.Outputs).FirstOrDefault(o => Str(o["output_type"]) == "error");
        return error is null ? null : $"{Str(error["ename"])}: {Str(error["evalue"])?.Split('\n')[0]}";
    }

    private static Notebook? TryRead(string path)
    {
        try
        {
            return File.Exists(path) ? NotebookReader.Read(path) : null;
        }
        catch (LabException)
        {
            return null;
        }
    }

    private static string? HostKernel()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Environment.OSVersion.VersionString;
        }
    }

    private static string? Str(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'+00:00'", CultureInfo.InvariantCulture);

    /// <summary>A temporary file in the same folder, then a rename: a reader sees the old record or the whole new one.</summary>
    internal static void WriteAtomically(string path, JsonObject content)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, content.ToJsonString(Indented) + "\n", new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// results.jsonl: one compact JSON record per line, one line per combination (sweep.json's runs), for loading the
    /// sweep elsewhere (pandas, jq, DuckDB) without reading the summary. Through a temporary file, as sweep.json.
    /// </summary>
    internal static void WriteLinesAtomically(string path, IEnumerable<JsonObject> records)
    {
        var tmp = path + ".tmp";
        var text = new StringBuilder();
        foreach (var record in records)
        {
            text.Append(record.ToJsonString(Compact)).Append('\n');
        }
        File.WriteAllText(tmp, text.ToString(), new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    private void Say(string line)
    {
        lock (_consoleLock)
        {
            Log.WriteLine(line);
        }
    }

    /// <summary>The sweep's run slots (one per job of each host), handed out to whoever may use them.</summary>
    private sealed class SlotPool(IEnumerable<string> slots)
    {
        private readonly List<string> _free = [.. slots];
        private readonly List<(Func<string, bool> Accept, TaskCompletionSource<string> Waiter)> _waiting = [];

        public IReadOnlyList<string> Hosts { get; } = [.. slots];

        public int Count => Hosts.Count;

        public Task<string> AcquireAsync(Func<string, bool> accept, CancellationToken cancellationToken)
        {
            lock (_free)
            {
                var i = _free.FindIndex(s => accept(s));
                if (i >= 0)
                {
                    var slot = _free[i];
                    _free.RemoveAt(i);
                    return Task.FromResult(slot);
                }
                var waiter = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add((accept, waiter));
                cancellationToken.Register(() =>
                {
                    lock (_free)
                    {
                        _waiting.RemoveAll(w => w.Waiter == waiter);
                    }
                    waiter.TrySetCanceled(cancellationToken);
                });
                return waiter.Task;
            }
        }

        public void Release(string slot)
        {
            lock (_free)
            {
                var i = _waiting.FindIndex(w => w.Accept(slot) && !w.Waiter.Task.IsCompleted);
                if (i >= 0)
                {
                    var waiter = _waiting[i].Waiter;
                    _waiting.RemoveAt(i);
                    if (waiter.TrySetResult(slot))
                    {
                        return;
                    }
                }
                _free.Add(slot);
            }
        }
    }
}
