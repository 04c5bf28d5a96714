using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LabKernel.Host;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// What a papermill user relies on, in `lab run`: --prepare-only, the metadata papermill and nbclient write, an error
/// banner whose link works in the notebook itself, --log-output. The runs use a real kernel process (no guest).
/// </summary>
public sealed partial class PapermillCompatibilityTests
{
    [Fact]
    public async Task Given_IN_OUT_p_and_f_with_prepare_only_When_run_Then_OUT_has_the_parameters_injected_and_no_cell_ran()
    {
        using var scratch = TempDir("prepare-only");
        var output = Path.Combine(scratch.Path, "out.ipynb");
        var yaml = Path.Combine(scratch.Path, "params.yaml");
        await File.WriteAllTextAsync(yaml, "repeat: 4\nword: from-file\n");

        var exit = await Lab("run", Fixture("sample.dib"), output, "-p", "word", "yo", "-f", yaml, "--prepare-only");

        Assert.Equal(0, exit);
        await AssertValidNotebookAsync(output);
        var nb = ReadJson(output);
        var cells = Cells(nb);
        var injected = cells.Single(c => c["metadata"]?["tags"]?.AsArray().Any(t => t!.GetValue<string>() == "injected-parameters") == true);
        Assert.Equal("// Parameters injected by lab run\nrepeat = 4;\nword = \"yo\";", Source(injected));
        Assert.All(cells.Where(c => c["cell_type"]!.GetValue<string>() == "code"), c =>
        {
            Assert.Null(c["execution_count"]);
            Assert.Empty(c["outputs"]!.AsArray());
            Assert.Null(c["metadata"]!["lab"]?["status"]);
        });
        Assert.Equal("prepared", nb["metadata"]!["lab"]!["status"]!.GetValue<string>());
        var papermill = nb["metadata"]!["papermill"]!.AsObject();
        // As papermill's --prepare-only leaves it: the paths and parameters, no times.
        Assert.Equal(["default_parameters", "parameters", "environment_variables", "version", "generator", "input_path", "output_path"], papermill.Select(kv => kv.Key));
        Assert.Equal("""{"repeat":4,"word":"yo"}""", papermill["parameters"]!.ToJsonString());
        Assert.Equal(Fixture("sample.dib"), papermill["input_path"]!.GetValue<string>());
        Assert.Equal(output, papermill["output_path"]!.GetValue<string>());
    }

    [Fact]
    public void Given_times_with_sub_microsecond_ticks_When_the_duration_is_written_Then_it_is_the_difference_of_the_written_times()
    {
        // CI's numbers: the clock's 100 ns ticks gave 3.6365003 s between times written 3.636500 s apart.
        var start = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero).AddTicks(4);
        var end = start.AddTicks(36_365_003);

        var seconds = PapermillMetadata.Seconds(start, end);

        var written = DateTimeOffset.Parse(PapermillMetadata.Papermill(end), System.Globalization.CultureInfo.InvariantCulture)
            - DateTimeOffset.Parse(PapermillMetadata.Papermill(start), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(written.TotalSeconds, seconds);
        Assert.Equal(3.6365, seconds);
    }

    [Fact]
    public async Task Given_a_notebook_whose_second_code_cell_fails_When_run_Then_metadata_papermill_and_execution_have_papermills_and_nbclients_shape()
    {
        using var scratch = TempDir("papermill-meta");
        var input = Path.Combine(scratch.Path, "failing.dib");
        await File.WriteAllTextAsync(input, "#!markdown\n# Title\n#!csharp\nConsole.WriteLine(\"one\");\n#!markdown\nnote\n#!csharp\nthrow new InvalidOperationException(\"boom\");\n#!csharp\nConsole.WriteLine(\"three\");\n");
        var output = Path.Combine(scratch.Path, "out.ipynb");

        Assert.Equal(1, await Lab("run", input, output, "--no-progress"));

        await AssertValidNotebookAsync(output);
        var nb = ReadJson(output);
        var run = nb["metadata"]!["papermill"]!.AsObject();
        Assert.Equal(
            ["default_parameters", "parameters", "environment_variables", "version", "generator", "input_path", "output_path", "start_time", "end_time", "duration", "exception"],
            run.Select(kv => kv.Key));
        Assert.Equal("{}", run["environment_variables"]!.ToJsonString());
        Assert.Equal(LabRunnerVersion, run["version"]!.GetValue<string>());
        Assert.Equal($"lab run {LabRunnerVersion}", run["generator"]!.GetValue<string>());
        Assert.Equal(input, run["input_path"]!.GetValue<string>());
        Assert.Equal(output, run["output_path"]!.GetValue<string>());
        Assert.Matches(PapermillTime(), run["start_time"]!.GetValue<string>());
        Assert.Matches(PapermillTime(), run["end_time"]!.GetValue<string>());
        // As papermill computes it: the difference of the written times, exactly (not within a rounding).
        Assert.Equal((Time(run["end_time"]) - Time(run["start_time"])).TotalSeconds, run["duration"]!.GetValue<double>(), 1e-9);
        Assert.True(run["exception"]!.GetValue<bool>());

        var cells = Cells(nb);
        // banner, # Title, one, note, anchor, the failing cell, three
        Assert.Equal(7, cells.Count);
        JsonObject Pm(int i) => cells[i]["metadata"]!["papermill"]!.AsObject();
        Assert.Null(cells[0]["metadata"]!["papermill"]);
        Assert.Equal("completed", Pm(1)["status"]!.GetValue<string>());
        Assert.Equal(0, Pm(1)["duration"]!.GetValue<double>());
        var ok = Pm(2);
        Assert.Equal(["exception", "start_time", "end_time", "duration", "status"], ok.Select(kv => kv.Key));
        Assert.Equal("completed", ok["status"]!.GetValue<string>());
        Assert.False(ok["exception"]!.GetValue<bool>());
        Assert.Matches(PapermillTime(), ok["start_time"]!.GetValue<string>());
        Assert.True(ok["duration"]!.GetValue<double>() >= 0);
        var execution = cells[2]["metadata"]!["execution"]!.AsObject();
        Assert.Equal(["iopub.status.busy", "iopub.execute_input", "shell.execute_reply", "iopub.status.idle"], execution.Select(kv => kv.Key));
        Assert.All(execution, kv => Assert.Matches(NbclientTime(), kv.Value!.GetValue<string>()));
        Assert.Equal(Time(ok["start_time"]), Time(execution["iopub.execute_input"]));
        Assert.Equal(Time(ok["end_time"]), Time(execution["shell.execute_reply"]));
        var failed = Pm(5);
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.True(failed["exception"]!.GetValue<bool>());
        var pending = Pm(6);
        Assert.Equal("pending", pending["status"]!.GetValue<string>());
        Assert.Null(pending["start_time"]);
        Assert.Null(pending["exception"]);
        Assert.Null(cells[6]["metadata"]!["execution"]);

        // The banner's link names a heading in the cell right before the failing one: the anchor is in the notebook.
        var link = Regex.Match(Source(cells[0]), @"\]\(#([^)]+)\)").Groups[1].Value;
        Assert.Equal("lab-run-failed-here", link);
        var heading = Source(cells[4]).Split('\n')[0];
        Assert.Equal("#### lab run failed here", heading);
        Assert.Equal(link, GitHubSlug(heading.TrimStart('#').Trim()));
        Assert.Equal(link, heading.TrimStart('#').Trim().Replace(' ', '-')); // JupyterLab's and nbconvert's ids keep case: the same here
        // Both marker cells carry papermill's tag too, so a papermill run of this output removes them, as lab run does.
        Assert.All(new[] { cells[0], cells[4] }, c => Assert.Contains("papermill-error-cell-tag", c["metadata"]!["tags"]!.AsArray().Select(t => t!.GetValue<string>())));
    }

    [Fact]
    public async Task Given_an_executed_notebook_When_run_again_Then_the_earlier_banner_anchor_and_metadata_are_replaced_not_kept()
    {
        using var scratch = TempDir("papermill-rerun");
        var input = Path.Combine(scratch.Path, "failing.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nthrow new InvalidOperationException(\"boom\");\n");
        var first = Path.Combine(scratch.Path, "first.ipynb");
        var second = Path.Combine(scratch.Path, "second.ipynb");
        Assert.Equal(1, await Lab("run", input, first, "--no-progress"));

        Assert.Equal(1, await Lab("run", first, second, "--no-progress"));

        var cells = Cells(ReadJson(second));
        Assert.Equal(["markdown", "markdown", "code"], cells.Select(c => c["cell_type"]!.GetValue<string>()));
        Assert.Single(cells, c => Source(c).StartsWith("#### lab run failed here", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Given_log_output_When_a_cell_prints_and_then_blocks_Then_its_line_is_on_the_log_before_the_cell_ends_prefixed_with_its_number()
    {
        using var scratch = TempDir("log-output");
        var gate = Path.Combine(scratch.Path, "go");
        var input = Path.Combine(scratch.Path, "log.dib");
        await File.WriteAllTextAsync(input,
            "#!markdown\n# Log\n#!csharp\nConsole.WriteLine(\"before\");\n"
            + $"#!csharp\nConsole.WriteLine(\"first\");\nwhile (!System.IO.File.Exists({System.Text.Json.JsonSerializer.Serialize(gate)})) System.Threading.Thread.Sleep(5);\nConsole.Write(\"no newline\");\n"
            + "#!csharp\nstring.Concat(\"4\", \"2\")\n#!csharp\nConsole.Error.WriteLine(\"warn\");\nthrow new InvalidOperationException(\"boom\");\n");
        var log = new LogWriter();
        var runner = new NotebookRunner { CellOutputLog = log };

        var run = runner.RunAsync(new RunOptions { InputPath = input, OutputPath = Path.Combine(scratch.Path, "out.ipynb"), Timeout = TimeSpan.FromMinutes(2) }, new SilentProgress());
        // The second code cell's first line is in the log while that cell still runs (it waits for the gate).
        await Poll.UntilAsync(_ => Task.FromResult((run.IsCompleted || log.Text.Contains("[cell 2] first\n", StringComparison.Ordinal), "")),
            "cell 2's first line on the log", TimeSpan.FromMinutes(1));
        Assert.False(run.IsCompleted, "the run ended before its second code cell printed: " + log.Text);
        Assert.DoesNotContain("no newline", log.Text);
        await File.WriteAllTextAsync(gate, "");
        var outcome = await run;

        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal(
            "[cell 1] before\n[cell 2] first\n[cell 2] no newline\n[cell 3] 42\n[cell 4 stderr] warn\n[cell 4 stderr] InvalidOperationException: boom\n",
            log.Text);
    }

    [Fact]
    public async Task Given_IN_OUT_p_and_y_on_one_line_When_run_Then_the_cells_see_the_merged_values_and_OUT_is_written()
    {
        using var scratch = TempDir("papermill-line");
        var output = Path.Combine(scratch.Path, "out.ipynb");

        Assert.Equal(0, await Lab("run", Fixture("sample.dib"), output, "-p", "repeat", "3", "-y", "word: yo\nrepeat: 9", "--no-progress"));

        var cells = Cells(ReadJson(output));
        var result = cells.Single(c => Source(c).StartsWith("string.Join", StringComparison.Ordinal))["outputs"]![0]!;
        Assert.Equal("yo yo yo", Text(result["data"]!["text/plain"]));
        Assert.Equal("""{"word":"yo","repeat":3}""", ReadJson(output)["metadata"]!["papermill"]!["parameters"]!.ToJsonString());
    }

    [Fact]
    public async Task Given_log_output_on_the_command_line_When_lab_runs_as_its_own_process_Then_stderr_has_each_cells_output_prefixed_and_plain_progress_lines()
    {
        using var scratch = TempDir("log-output-cli");
        var (dotnet, prefix) = KernelClient.KernelCommandLine();

        var r = await LabKernel.Processes.ProcessRunner.RunAsync(dotnet, [.. prefix, "run", Fixture("sample.dib"), Path.Combine(scratch.Path, "out.ipynb"), "--log-output"],
            new LabKernel.Processes.ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(2) });

        Assert.True(r.ExitCode == 0, r.StandardError);
        var lines = r.StandardError.Split('\n');
        Assert.Contains("[cell 2] hi hi", lines);
        Assert.Contains("[cell 4] total 55", lines);
        Assert.True(Array.IndexOf(lines, "[cell 2] hi hi") < Array.FindIndex(lines, l => l.StartsWith("[2/4] ok", StringComparison.Ordinal)));
        Assert.Equal("", r.StandardOutput);
    }

    private static string LabRunnerVersion => "0.1.0";

    private static DateTimeOffset Time(JsonNode? node) => DateTimeOffset.Parse(node!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>GitHub's (and VS Code's, Markdig's GitHub mode) heading id: lowercase, spaces to hyphens, other punctuation dropped.</summary>
    private static string GitHubSlug(string heading) =>
        new(heading.ToLowerInvariant().Select(c => c == ' ' ? '-' : c).Where(c => char.IsLetterOrDigit(c) || c is '-' or '_').ToArray());

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")]
    private static partial Regex PapermillTime();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
    private static partial Regex NbclientTime();

    /// <summary>A log that the runner writes from its own flow while the test reads it.</summary>
    private sealed class LogWriter : StringWriter
    {
        private readonly object _gate = new();

        public string Text
        {
            get
            {
                lock (_gate)
                {
                    return ToString();
                }
            }
        }

        public override void Write(char value)
        {
            lock (_gate)
            {
                base.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_gate)
            {
                base.Write(value);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (_gate)
            {
                base.Write(value);
                base.Write('\n');
            }
        }
    }
}
