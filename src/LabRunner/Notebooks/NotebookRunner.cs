using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel;

namespace LabRunner.Notebooks;

/// <summary>
/// Runs a notebook: reads it, injects parameters, starts a kernel process, sends the C# cells one by one, and
/// records outputs and per-cell metadata (start, end, duration, status; papermill's and nbclient's beside the lab's,
/// <see cref="PapermillMetadata"/>). The executed notebook is saved after every cell. With
/// <see cref="RunOptions.PrepareOnly"/> it is only written with the parameters injected. The first failing cell stops
/// the run unless errors are allowed; a failed or timed-out run gets a banner cell at the top linking to a heading in
/// an anchor cell right before the failing cell. An interruption (<see cref="Interruption"/>: Ctrl-C, SIGTERM)
/// stops the kernel in whatever cell it is, and no further cell runs. The report, when asked for, is written at the end.
/// </summary>
public sealed class NotebookRunner
{
    public const string BannerTag = "lab-error-banner";

    /// <summary>The markdown cell put right before the failing cell, whose heading the banner links to.</summary>
    public const string AnchorTag = "lab-error-anchor";

    /// <summary>Papermill's tag on its error cells: papermill removes cells tagged so when it runs a notebook again, and so does lab run.</summary>
    public const string PapermillErrorTag = "papermill-error-cell-tag";

    private readonly TimeProvider _time;

    public NotebookRunner(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Where stdout/stderr of a .csx go live (as dotnet-script prints them); null: only into the notebook.</summary>
    public TextWriter? ScriptOut { get; init; }

    public TextWriter? ScriptError { get; init; }

    /// <summary>
    /// Where each cell's output is written as it comes (<c>--log-output</c>, as papermill's): every line prefixed with
    /// the code cell's number, <c>[cell 3]</c> (<c>[cell 3 stderr]</c> for its stderr); null: only into the notebook.
    /// </summary>
    public TextWriter? CellOutputLog { get; init; }

    /// <summary>
    /// <see cref="CellOutputLog"/> is a terminal: a cell that runs long without output shows a live line there,
    /// rewritten in place; otherwise a plain line each <see cref="QuietCellInterval"/> of silence (<see cref="QuietCellProgress"/>).
    /// </summary>
    public bool CellOutputLogIsTerminal { get; init; }

    /// <summary>How long a cell is quiet between two of its "still running" lines on a log that is not a terminal.</summary>
    public TimeSpan QuietCellInterval { get; init; } = QuietCellProgress.DefaultPlainInterval;

    /// <summary>
    /// How long an idle kernel may take to end after the run: at exit it quits the QEMU machines and destroys and
    /// undefines the libvirt domains its cells left running, which under load takes seconds. Past the limit it is
    /// stopped (SIGTERM, then killed).
    /// </summary>
    public TimeSpan KernelCleanupLimit { get; init; } = KernelClient.DefaultCleanupLimit;

    /// <summary>What stops the run when a user interrupts it (<c>lab run</c> listens for SIGINT and SIGTERM); null: nothing.</summary>
    internal RunInterruption? Interruption { get; init; }

    /// <summary>
    /// Writes the HTML report of the executed notebook to a path, when <see cref="RunOptions.ReportPath"/> asks for
    /// one (the lab's <c>HtmlReport.Write</c>; the runner sits below the reporting layer and is handed it).
    /// </summary>
    public Action<Notebook, string>? WriteReport { get; init; }

    private bool Interrupted => Interruption?.IsRequested == true;

    /// <summary>
    /// Whether the run is interrupted, asked when the kernel ended on its own: a kernel that died of SIGINT got the
    /// user's Ctrl-C before it could pass it on, so the run is interrupted even if the runner's own signal (a
    /// terminal sends it to both) has not been handled yet.
    /// </summary>
    private bool KernelWasInterrupted(KernelClient kernel)
    {
        if (Interruption is { } interruption && !interruption.IsRequested && kernel.DiedOfInterrupt())
        {
            interruption.Request(System.Runtime.InteropServices.PosixSignal.SIGINT);
        }
        return Interrupted;
    }

    public async Task<RunOutcome> RunAsync(RunOptions options, IRunProgress progress, CancellationToken cancellationToken = default)
    {
        var input = Path.GetFullPath(options.InputPath);
        if (!File.Exists(input))
        {
            throw new LabUsageException($"{options.InputPath}: no such file");
        }
        var notebook = NotebookReader.Read(input);
        var outputPath = options.OutputPath is not null
            ? Path.GetFullPath(options.OutputPath)
            : notebook.Format == NotebookFormat.Csx ? null : Path.Combine(Path.GetDirectoryName(input)!, Path.GetFileNameWithoutExtension(input) + ".executed.ipynb");
        if (outputPath is not null && !outputPath.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase))
        {
            throw new LabUsageException($"{options.OutputOrigin} {options.OutputPath}: the executed notebook is written as .ipynb");
        }
        if (outputPath == input)
        {
            throw new LabUsageException($"{options.OutputOrigin} {options.OutputPath}: refusing to overwrite the input notebook");
        }
        if (options.PrepareOnly && outputPath is null)
        {
            throw new LabUsageException("--prepare-only writes the notebook with its parameters injected: give OUT (a .csx writes none by default)");
        }
        var workingDirectory = Path.GetFullPath(options.WorkingDirectory ?? Path.GetDirectoryName(input)!);
        if (!Directory.Exists(workingDirectory))
        {
            throw new LabUsageException($"--cwd {options.WorkingDirectory}: no such directory");
        }

        Parameters.Inject(notebook, options.Parameters);
        Prepare(notebook);
        var runMeta = notebook.LabMetadata;
        runMeta["input"] = Path.GetFileName(input);
        // papermill records the paths as given; without OUT, the default the lab chose.
        var outputAsGiven = options.OutputPath ?? outputPath;
        if (options.PrepareOnly)
        {
            runMeta["status"] = "prepared";
            PapermillMetadata.Begin(notebook, options.InputPath, outputAsGiven, runMeta["parameters"] as JsonObject ?? [], start: null);
            NotebookWriter.Save(notebook, outputPath!);
            return new RunOutcome(RunExitCodes.Success, "prepared", outputPath, null, 0, null);
        }
        var runStarted = _time.GetUtcNow();
        runMeta["started"] = Iso(runStarted);
        runMeta["status"] = "running";
        PapermillMetadata.Begin(notebook, options.InputPath, outputAsGiven, runMeta["parameters"] as JsonObject ?? [], runStarted);
        void Save()
        {
            if (outputPath is not null)
            {
                NotebookWriter.Save(notebook, outputPath);
            }
        }
        var codeCells = notebook.Cells.Where(c => c.Kind == CellKind.Code).ToList();

        // The kernel process starts first: its runtime and Roslyn warm up while the run is being described.
        var runClock = Stopwatch.StartNew();
        var failedCell = (NotebookCell?)null;
        var interruptedCell = (NotebookCell?)null;
        var timedOut = false;
        var interruption = Interruption?.Token ?? CancellationToken.None;
        int? returnValue = null;
        var executionCount = 0;
        var cellsRun = 0;
        await using (var kernel = KernelClient.Start(workingDirectory, KernelCleanupLimit, options.Environment))
        {
            // The kernel reads this first and prepares the right engine (the C# kernel of Polyglot Notebooks for
            // notebooks, Roslyn scripting for .csx) while the run is being described; it answers `ready` when done.
            kernel.Send(new JsonObject
            {
                ["type"] = KernelProtocol.Init,
                ["baseDirectory"] = Path.GetDirectoryName(input),
                ["workingDirectory"] = workingDirectory,
                ["scriptPath"] = notebook.Format == NotebookFormat.Csx ? input : null,
                ["scriptMode"] = notebook.Format == NotebookFormat.Csx,
                ["args"] = new JsonArray(options.ScriptArguments.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            });
            var environment = await RunEnvironment.DescribeAsync(cancellationToken).ConfigureAwait(false);
            foreach (var (k, v) in environment)
            {
                runMeta[k] = v?.DeepClone();
            }
            Save();
            progress.Begin(Path.GetFileName(input), codeCells.Count);

            var kernelReady = await WaitForReadyAsync(kernel, options, runClock, interruption, cancellationToken).ConfigureAwait(false);
            if (!kernelReady.Ok)
            {
                timedOut = kernelReady.TimedOut;
                progress.Note(kernelReady.Message);
            }

            // Under --log-output, the log, with a line for a cell that runs long without output.
            using var quiet = CellOutputLog is null ? null : new QuietCellProgress(CellOutputLog, CellOutputLogIsTerminal, _time, QuietCellInterval);
            var number = 0;
            foreach (var cell in notebook.Cells.ToList())
            {
                // Checked before each cell, not only in one: an interruption between two cells (or before the first)
                // must not let the next one start.
                var stopped = !kernelReady.Ok || timedOut || Interrupted || (failedCell is not null && !options.AllowErrors);
                if (cell.Kind != CellKind.Code)
                {
                    // papermill passes markdown and raw cells too, as completed at once; after a stop they stay pending.
                    if (!stopped)
                    {
                        var now = _time.GetUtcNow();
                        PapermillMetadata.Cell(notebook, cell, now, now, failed: false);
                    }
                    continue;
                }
                number++;
                if (stopped)
                {
                    cell.LabMetadata["status"] = "not-run";
                    continue;
                }
                if (!Languages.IsCSharp(cell.Language))
                {
                    cell.LabMetadata["status"] = "skipped";
                    cell.LabMetadata["skip_reason"] = $"lab run executes C# cells only; this cell is {cell.Language ?? "of no known language"}";
                    progress.CellFinished(number, "skipped", TimeSpan.Zero, $"({cell.Language}) {cell.FirstLine}");
                    continue;
                }

                cell.ExecutionCount = ++executionCount;
                cellsRun++;
                progress.CellStarted(number, cell.FirstLine);
                var cellStart = _time.GetUtcNow();
                var clock = Stopwatch.StartNew();
                var log = quiet is null ? null : new CellLog(quiet, number);
                quiet?.CellStarted(number, cell.FirstLine);
                var result = await ExecuteCellAsync(kernel, cell, options, runClock, progress, log, interruption, cancellationToken).ConfigureAwait(false);
                if (log is not null && result.Status != "ok" && cell.Outputs.LastOrDefault(o => o["output_type"]?.GetValue<string>() == "error") is { } error)
                {
                    log.Error(error);
                }
                log?.Flush();
                quiet?.CellFinished();
                var cellEnd = _time.GetUtcNow();
                cell.LabMetadata["start"] = Iso(cellStart);
                cell.LabMetadata["end"] = Iso(cellEnd);
                cell.LabMetadata["duration"] = Math.Round(clock.Elapsed.TotalSeconds, 6);
                cell.LabMetadata["status"] = result.Status;
                PapermillMetadata.Cell(notebook, cell, cellStart, cellEnd, failed: result.Status != "ok");
                PapermillMetadata.Execution(cell, cellStart, cellEnd);
                if (result.Status != "ok")
                {
                    failedCell ??= cell;
                }
                if (result.Status == "timeout")
                {
                    timedOut = true;
                }
                if (result.Status == "interrupted")
                {
                    interruptedCell = cell;
                }
                returnValue = result.ReturnValue ?? returnValue;
                progress.CellFinished(number, result.Status, clock.Elapsed, cell.FirstLine);
                Save();
            }
        }

        // Once interrupted, at whatever moment (even after the last cell), the run reports it: the user asked it to stop.
        var interrupted = Interrupted;
        var findings = FindingsSummary.From(notebook);
        var refuted = findings is { Unexpected.Count: > 0 };
        var status = interrupted ? "interrupted" : timedOut ? "timeout" : failedCell is not null ? "failed" : refuted ? "refuted" : "ok";
        var exitCode = interrupted ? Interruption!.ExitCode
            : timedOut ? RunExitCodes.TimedOut
            : failedCell is not null ? RunExitCodes.CellFailed
            : refuted ? RunExitCodes.RefutedFinding
            : returnValue ?? RunExitCodes.Success;
        if (findings is not null)
        {
            runMeta["findings"] = findings.ToJson();
        }
        if (interrupted)
        {
            AddInterruptedBanner(notebook, interruptedCell, Interruption!.SignalName);
        }
        else if (failedCell is not null || timedOut)
        {
            AddBanner(notebook, failedCell, timedOut, options);
        }
        var finished = _time.GetUtcNow();
        PapermillMetadata.End(notebook, runStarted, finished);
        runMeta["finished"] = Iso(finished);
        runMeta["duration"] = Math.Round(runClock.Elapsed.TotalSeconds, 3);
        runMeta["status"] = status;
        runMeta["exit_code"] = exitCode;
        runMeta["failed_cell"] = failedCell?.Id;
        Save();

        string? reportPath = null;
        if (options.ReportPath is not null)
        {
            reportPath = Path.GetFullPath(options.ReportPath);
            notebook.EnsureCellIds();
            (WriteReport ?? throw new InvalidOperationException("RunOptions.ReportPath is set but the runner has no WriteReport"))(notebook, reportPath);
        }
        return new RunOutcome(exitCode, status, outputPath, reportPath, cellsRun, failedCell?.Id);
    }

    /// <summary>Clears what an earlier run left: outputs, counts, banners, the lab's cell metadata.</summary>
    internal static void Prepare(Notebook notebook)
    {
        notebook.Cells.RemoveAll(c => c.HasTag(BannerTag) || c.HasTag(AnchorTag) || c.HasTag(PapermillErrorTag));
        foreach (var cell in notebook.Cells)
        {
            cell.Outputs.Clear();
            cell.ExecutionCount = null;
            cell.Metadata.Remove("lab");
            PapermillMetadata.Clear(cell);
        }
        notebook.EnsureCellIds();
    }

    private sealed record CellResult(string Status, int? ReturnValue);

    private async Task<CellResult> ExecuteCellAsync(KernelClient kernel, NotebookCell cell, RunOptions options, Stopwatch runClock, IRunProgress progress, CellLog? log, CancellationToken interruption, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interruption);
        var (budget, which) = Budget(options, runClock);
        if (budget is { } b)
        {
            limit.CancelAfter(b);
        }
        var displays = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        kernel.Send(new JsonObject { ["type"] = KernelProtocol.Execute, ["code"] = cell.Source });
        try
        {
            while (true)
            {
                var message = await kernel.ReceiveAsync(limit.Token).ConfigureAwait(false);
                if (message is null && KernelWasInterrupted(kernel))
                {
                    return InterruptedCell(cell);
                }
                if (message is null)
                {
                    var tail = kernel.StandardErrorTail;
                    cell.Outputs.Add(Error("KernelDied", "the kernel process exited while running this cell", tail.Length > 0 ? tail.Split('\n') : []));
                    return new CellResult("error", null);
                }
                switch (KernelProtocol.TypeOf(message))
                {
                    case KernelProtocol.Stream:
                        var name = message["name"]?.GetValue<string>() ?? "stdout";
                        var text = message["text"]?.GetValue<string>() ?? "";
                        AppendStream(cell, name, text);
                        (name == "stderr" ? ScriptError : ScriptOut)?.Write(text);
                        log?.Stream(name, text);
                        break;
                    case KernelProtocol.Display:
                        var id = message["displayId"]?.GetValue<string>() ?? "";
                        var data = (JsonObject)(message["data"]?.DeepClone() ?? new JsonObject());
                        if (message["update"]?.GetValue<bool>() == true)
                        {
                            // An update replaces the display with its id. One that matches none is dropped, as
                            // Jupyter drops it (the C# kernel publishes display() without the id its Update uses).
                            if (displays.TryGetValue(id, out var existing))
                            {
                                existing["data"] = data;
                            }
                        }
                        else
                        {
                            var output = new JsonObject { ["output_type"] = "display_data", ["data"] = data, ["metadata"] = new JsonObject() };
                            displays[id] = output;
                            cell.Outputs.Add(output);
                            log?.Display(data);
                        }
                        break;
                    case KernelProtocol.Result:
                        var resultData = message["data"]?.DeepClone() as JsonObject ?? [];
                        cell.Outputs.Add(new JsonObject
                        {
                            ["output_type"] = "execute_result",
                            ["execution_count"] = cell.ExecutionCount,
                            ["data"] = resultData,
                            ["metadata"] = new JsonObject(),
                        });
                        log?.Display(resultData);
                        break;
                    case KernelProtocol.Log:
                        progress.Note(message["text"]?.GetValue<string>() ?? "");
                        break;
                    case KernelProtocol.Done:
                        if (message["status"]?.GetValue<string>() == "ok")
                        {
                            return new CellResult("ok", message["returnValue"] is JsonValue rv && rv.TryGetValue<int>(out var code) ? code : null);
                        }
                        var traceback = (message["traceback"] as JsonArray ?? []).Select(t => t?.GetValue<string>() ?? "").ToList();
                        cell.Outputs.Add(Error(message["ename"]?.GetValue<string>() ?? "Error", message["evalue"]?.GetValue<string>() ?? "", traceback));
                        ScriptError?.WriteLine(string.Join('\n', traceback));
                        return new CellResult("error", null);
                }
            }
        }
        catch (OperationCanceledException) when (interruption.IsCancellationRequested)
        {
            // The cell may ignore cancellation or be blocked (a guest starting): stopping the kernel stops it, and
            // the kernel's exit hooks quit the guests it started.
            kernel.Kill();
            return InterruptedCell(cell);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            kernel.Kill();
            var seconds = budget!.Value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            var why = which == "cell"
                ? $"the cell ran longer than its time limit of {seconds} s (--cell-timeout); the kernel was stopped"
                : $"the run reached its time limit (--timeout) during this cell, after {seconds} s of it; the kernel was stopped";
            cell.Outputs.Add(Error("TimeoutError", why, [why]));
            return new CellResult("timeout", null);
        }
    }

    private CellResult InterruptedCell(NotebookCell cell)
    {
        var why = $"lab run was interrupted ({Interruption!.SignalName}) during this cell; the kernel was stopped";
        cell.Outputs.Add(Error("Interrupted", why, [why]));
        return new CellResult("interrupted", null);
    }

    private async Task<(bool Ok, bool TimedOut, string Message)> WaitForReadyAsync(KernelClient kernel, RunOptions options, Stopwatch runClock, CancellationToken interruption, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interruption);
        if (options.Timeout is { } t)
        {
            limit.CancelAfter(t - runClock.Elapsed is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }
        try
        {
            while (await kernel.ReceiveAsync(limit.Token).ConfigureAwait(false) is { } m)
            {
                if (KernelProtocol.TypeOf(m) == KernelProtocol.Ready)
                {
                    return (true, false, "");
                }
            }
            if (KernelWasInterrupted(kernel))
            {
                return (false, false, "interrupted while the kernel was starting");
            }
            throw new LabException($"the notebook kernel exited before it was ready: {kernel.StandardErrorTail}");
        }
        catch (OperationCanceledException) when (interruption.IsCancellationRequested)
        {
            kernel.Kill();
            return (false, false, "interrupted while the kernel was starting; the kernel was stopped");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            kernel.Kill();
            return (false, true, "the run reached its time limit while the kernel was starting");
        }
    }

    private static (TimeSpan? Budget, string Which) Budget(RunOptions options, Stopwatch runClock)
    {
        TimeSpan? run = options.Timeout is { } t ? (t - runClock.Elapsed is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero) : null;
        if (options.CellTimeout is { } c && (run is null || c <= run))
        {
            return (c, "cell");
        }
        return (run, "run");
    }

    private static void AppendStream(NotebookCell cell, string name, string text)
    {
        if (cell.Outputs.Count > 0 && cell.Outputs[^1] is { } last
            && last["output_type"]?.GetValue<string>() == "stream" && last["name"]?.GetValue<string>() == name)
        {
            last["text"] = last["text"]!.GetValue<string>() + text;
            return;
        }
        cell.Outputs.Add(new JsonObject { ["output_type"] = "stream", ["name"] = name, ["text"] = text });
    }

    private static JsonObject Error(string ename, string evalue, IEnumerable<string> traceback) => new()
    {
        ["output_type"] = "error",
        ["ename"] = ename,
        ["evalue"] = evalue,
        ["traceback"] = new JsonArray(traceback.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
    };

    private static void AddBanner(Notebook notebook, NotebookCell? failed, bool timedOut, RunOptions options)
    {
        var what = timedOut ? "stopped at its time limit" : "failed";
        string text;
        if (failed is null)
        {
            text = $"> **lab run {what}** before any cell ran (the kernel did not start in time).";
        }
        else
        {
            var index = notebook.Cells.Where(c => c.Kind == CellKind.Code).ToList().IndexOf(failed) + 1;
            var error = failed.Outputs.LastOrDefault(o => o["output_type"]?.GetValue<string>() == "error");
            var ename = error?["ename"]?.GetValue<string>() ?? "Error";
            var evalue = (error?["evalue"]?.GetValue<string>() ?? "").Split('\n')[0];
            var rest = options.AllowErrors && !timedOut ? " (errors were allowed, so later cells ran too)" : " Later cells did not run.";
            var anchor = AddAnchor(notebook, failed, timedOut ? "lab run stopped here" : "lab run failed here", $"Code cell {index} below {(timedOut ? "reached the time limit" : "failed")}: `{CodeSpan(ename + ": " + evalue)}`");
            text = $"> **lab run {what}** in [code cell {index}](#{anchor}) (`{failed.Id}`): `{CodeSpan(ename + ": " + evalue)}`\n>\n> The error output is kept under that cell.{rest}";
        }
        InsertBanner(notebook, text);
    }

    private static void AddInterruptedBanner(Notebook notebook, NotebookCell? during, string signal)
    {
        string text;
        if (during is null)
        {
            text = $"> **lab run was interrupted** ({signal}): the kernel and the guests it started were stopped, and the cells after the last one that ran did not run.";
        }
        else
        {
            var index = notebook.Cells.Where(c => c.Kind == CellKind.Code).ToList().IndexOf(during) + 1;
            var anchor = AddAnchor(notebook, during, "lab run stopped here", $"lab run was interrupted ({signal}) in code cell {index} below.");
            text = $"> **lab run was interrupted** ({signal}) in [code cell {index}](#{anchor}) (`{during.Id}`): the kernel and the guests it started were stopped.\n>\n> Later cells did not run.";
        }
        InsertBanner(notebook, text);
    }

    private static void InsertBanner(Notebook notebook, string text)
    {
        var banner = new NotebookCell(CellKind.Markdown, text, null, new JsonObject { ["tags"] = new JsonArray(BannerTag, PapermillErrorTag) });
        notebook.Cells.Insert(0, banner);
        notebook.EnsureCellIds();
    }

    /// <summary>
    /// Puts a markdown cell right before <paramref name="cell"/> (as papermill puts its anchor) whose heading is what the
    /// banner links to, and returns the fragment. A heading, not papermill's HTML <c>span id</c>: every renderer makes
    /// a heading a link target (JupyterLab, VS Code, GitHub, nbconvert, the lab's report), and a lowercase heading of
    /// plain words gets the same id in all of them, while raw HTML ids are dropped by some (sanitizers, windowed
    /// notebooks that scroll only to headings, the lab's report, which escapes raw HTML).
    /// </summary>
    private static string AddAnchor(Notebook notebook, NotebookCell cell, string heading, string text)
    {
        var anchor = new NotebookCell(CellKind.Markdown, $"#### {heading}\n\n{text}", null, new JsonObject { ["tags"] = new JsonArray(AnchorTag, PapermillErrorTag) });
        notebook.Cells.Insert(notebook.Cells.IndexOf(cell), anchor);
        return heading.Replace(' ', '-');
    }

    /// <summary>Text for a markdown code span, which shows it literally in Jupyter, VS Code and lab reports.</summary>
    private static string CodeSpan(string s) => s.Replace('`', '\'').Replace('\n', ' ');

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    /// <summary>
    /// One cell's output for <c>--log-output</c>: whole lines, each prefixed with the cell's number; a line the cell
    /// has not ended yet waits for its end or the cell's.
    /// </summary>
    private sealed class CellLog(QuietCellProgress writer, int number)
    {
        private readonly Dictionary<string, string> _partial = new(StringComparer.Ordinal);

        public void Stream(string name, string text)
        {
            var pending = (_partial.TryGetValue(name, out var p) ? p : "") + text;
            var end = pending.LastIndexOf('\n');
            if (end >= 0)
            {
                Lines(name, pending[..end]);
                pending = pending[(end + 1)..];
            }
            _partial[name] = pending;
        }

        public void Display(JsonObject data)
        {
            if (NotebookReader.ReadSource(data["text/plain"]) is { Length: > 0 } text)
            {
                Lines("stdout", text.TrimEnd('\n'));
            }
        }

        public void Error(JsonObject error) =>
            Lines("stderr", $"{error["ename"]?.ToString()}: {NotebookReader.ReadSource(error["evalue"]) ?? ""}");

        public void Flush()
        {
            foreach (var (name, rest) in _partial.Where(kv => kv.Value.Length > 0).ToList())
            {
                Lines(name, rest);
            }
            _partial.Clear();
            writer.Flush();
        }

        private void Lines(string name, string text)
        {
            var prefix = name == "stderr" ? $"[cell {number} stderr] " : $"[cell {number}] ";
            foreach (var line in text.Split('\n'))
            {
                writer.WriteLine(prefix + line.TrimEnd('\r'));
            }
            writer.Flush();
        }
    }
}
