using System.Diagnostics;
using System.Text.Json.Nodes;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>`lab run` end to end: a real kernel process, real notebooks, outputs checked with python3-nbformat.</summary>
public sealed class LabRunTests
{
    [Fact]
    public async Task The_VS_Code_notebook_runs_with_parameters_and_its_executed_copy_is_valid_nbformat()
    {
        using var scratch = TempDir("vscode");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "out.ipynb");

        var exit = await Lab("run", Fixture("vscode.ipynb"), "-o", output, "-p", "samples", "7", "-p", "label", "run-42", "--no-progress");

        Assert.Equal(0, exit);
        await AssertValidNotebookAsync(output);
        var nb = ReadJson(output);
        var cells = Cells(nb);
        var parameters = cells.FindIndex(c => c["metadata"]?["tags"]?.AsArray().Any(t => t!.GetValue<string>() == "parameters") == true);
        var injected = cells[parameters + 1];
        Assert.Equal("injected-parameters", injected["metadata"]!["tags"]![0]!.GetValue<string>());
        Assert.Equal("// Parameters injected by lab run\nsamples = 7;\nlabel = \"run-42\";", Source(injected));
        // The injected values are what later cells saw.
        var stream = cells.SelectMany(c => c["outputs"]?.AsArray() ?? []).First(o => o!["output_type"]!.GetValue<string>() == "stream");
        Assert.Equal("run-42: 7 samples\n", Text(stream!["text"]));
        Assert.Equal(7, nb["metadata"]!["lab"]!["parameters"]!["samples"]!.GetValue<int>());
        // Execution counts run 1..N over executed cells; every executed cell has timing and status.
        var executed = cells.Where(c => c["cell_type"]!.GetValue<string>() == "code" && c["execution_count"] is not null).ToList();
        Assert.NotEmpty(executed);
        Assert.Equal(Enumerable.Range(1, executed.Count), executed.Select(c => c["execution_count"]!.GetValue<int>()));
        Assert.All(executed, c =>
        {
            var lab = c["metadata"]!["lab"]!;
            Assert.Equal("ok", lab["status"]!.GetValue<string>());
            Assert.True(DateTimeOffset.Parse(lab["end"]!.GetValue<string>()) >= DateTimeOffset.Parse(lab["start"]!.GetValue<string>()));
            Assert.True(lab["duration"]!.GetValue<double>() >= 0);
        });
        var fsharp = cells.Last();
        Assert.Equal("skipped", Status(fsharp));
        Assert.Contains("fsharp", fsharp["metadata"]!["lab"]!["skip_reason"]!.GetValue<string>());
        // The chart is a plotly JSON object (data and layout, the shaded window a shape) plus light HTML and text
        // fallbacks with no plotly.js in them; the table is HTML and text.
        var figure = cells.SelectMany(c => c["outputs"]?.AsArray() ?? []).Select(o => o!["data"]).First(d => d?["application/vnd.plotly.v1+json"] is not null)!;
        Assert.IsType<JsonObject>(figure["application/vnd.plotly.v1+json"]);
        Assert.Equal("latency (ms)", figure["application/vnd.plotly.v1+json"]!["layout"]!["yaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal(["data", "layout"], figure["application/vnd.plotly.v1+json"]!.AsObject().Select(kv => kv.Key));
        Assert.Equal("rect", figure["application/vnd.plotly.v1+json"]!["layout"]!["shapes"]![0]!["type"]!.GetValue<string>());
        Assert.InRange(Text(figure["text/html"]).Length, 1, 1000);
        Assert.Contains("Chart \"Latency (run-42)\"", Text(figure["text/plain"]));
        Assert.DoesNotContain("plotly.js v", File.ReadAllText(output));
        var table = cells.SelectMany(c => c["outputs"]?.AsArray() ?? []).Select(o => o!["data"]).First(d => Text(d?["text/html"]).Contains("lab-table"))!;
        Assert.Contains("first samples", Text(table["text/plain"]));
        var meta = nb["metadata"]!["lab"]!;
        Assert.Equal("ok", meta["status"]!.GetValue<string>());
        Assert.Equal(0, meta["exit_code"]!.GetValue<int>());
        Assert.Equal("0.1.0", meta["lab_version"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(meta["host"]!.GetValue<string>()));
        Assert.NotNull(meta["accelerator"]);
        Assert.True(meta.AsObject().ContainsKey("qemu_version"));
        Assert.True(meta.AsObject().ContainsKey("libvirt_version"));
    }

    [Fact]
    public async Task An_unknown_parameter_exits_with_2_and_writes_nothing()
    {
        using var scratch = TempDir("unknown-param");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "out.ipynb");

        var exit = await Lab("run", Fixture("vscode.ipynb"), "-o", output, "-p", "sample", "7");

        Assert.Equal(2, exit);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("missing.ipynb")]
    [InlineData("notebook.txt")]
    public async Task An_unreadable_input_exits_with_2(string name)
    {
        using var scratch = TempDir("bad-input");
        var dir = scratch.Path;
        if (name.EndsWith(".txt", StringComparison.Ordinal))
        {
            await File.WriteAllTextAsync(Path.Combine(dir, name), "hello");
        }

        Assert.Equal(2, await Lab("run", Path.Combine(dir, name)));
    }

    [Fact]
    public async Task An_invalid_notebook_and_bad_options_exit_with_2()
    {
        using var scratch = TempDir("invalid");
        var dir = scratch.Path;
        var path = Path.Combine(dir, "broken.ipynb");
        await File.WriteAllTextAsync(path, """{"cells": 3, "nbformat": 4}""");

        Assert.Equal(2, await Lab("run", path));
        Assert.Equal(2, await Lab("run", Fixture("sample.dib"), "--timeout", "soon"));
        Assert.Equal(2, await Lab("run", Fixture("sample.dib"), "--no-such-option"));
        Assert.Equal(2, await Lab("run"));
        // An odd number of -p values, a malformed cell time limit: one line and 2, not a page of help.
        Assert.Equal(2, await Lab("run", Fixture("sample.dib"), "-p", "points"));
        Assert.Equal(2, await Lab("run", Fixture("sample.dib"), "--cell-timeout", "abc"));
        Assert.Equal(2, await Lab("run", Fixture("sample.dib"), "--cell-timeout", "-5"));
        // -o naming the input itself (by another spelling too) is refused and the input left as it was.
        var input = Path.Combine(dir, "in.ipynb");
        File.Copy(Fixture("vscode.ipynb"), input);
        var before = await File.ReadAllTextAsync(input);
        Assert.Equal(2, await Lab("run", input, "-o", input));
        Assert.Equal(2, await Lab("run", input, "-o", Path.Combine(dir, ".", "in.ipynb")));
        Assert.Equal(before, await File.ReadAllTextAsync(input));
    }

    [Fact]
    public async Task The_first_failing_cell_stops_the_run_and_a_banner_at_the_top_links_to_it()
    {
        using var scratch = TempDir("failing");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "failing.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nConsole.WriteLine(\"one\");\n#!csharp\nvar x = 1;\nthrow new InvalidOperationException(\"disk <vda> vanished\");\n#!csharp\nConsole.WriteLine(\"three\");\n");
        var output = Path.Combine(dir, "out.ipynb");
        var report = Path.Combine(dir, "report.html");

        var exit = await Lab("run", input, "-o", output, "--report", report);

        Assert.Equal(1, exit);
        await AssertValidNotebookAsync(output);
        Assert.True(File.Exists(report));
        var cells = Cells(ReadJson(output));
        var failed = cells[3];
        Assert.Equal("error", Status(failed));
        var error = failed["outputs"]!.AsArray().Single(o => o!["output_type"]!.GetValue<string>() == "error")!;
        Assert.Equal("InvalidOperationException", error["ename"]!.GetValue<string>());
        Assert.Equal("disk <vda> vanished", error["evalue"]!.GetValue<string>());
        Assert.Equal("not-run", Status(cells[4]));
        Assert.Empty(cells[4]["outputs"]!.AsArray());
        var banner = cells[0];
        Assert.Equal("markdown", banner["cell_type"]!.GetValue<string>());
        // The banner links to a heading in the notebook itself, in the markdown cell right before the failing cell.
        Assert.Contains("(#lab-run-failed-here)", Source(banner));
        Assert.Contains("InvalidOperationException: disk <vda> vanished", Source(banner));
        Assert.StartsWith("#### lab run failed here\n", Source(cells[2]));
        var html = await File.ReadAllTextAsync(report);
        Assert.Contains($"id=\"cell-{failed["id"]!.GetValue<string>()}\"", html);
        Assert.Contains("id=\"lab-run-failed-here\"", html);
        Assert.Contains("href=\"#lab-run-failed-here\"", html);
    }

    [Fact]
    public async Task With_allow_errors_every_cell_runs_but_the_exit_code_is_still_1()
    {
        using var scratch = TempDir("allow-errors");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "failing.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nthrow new Exception(\"first\");\n#!csharp\nConsole.WriteLine(\"still ran\");\n");
        var output = Path.Combine(dir, "out.ipynb");

        var exit = await Lab("run", input, "-o", output, "--allow-errors");

        Assert.Equal(1, exit);
        var cells = Cells(ReadJson(output));
        Assert.Equal(["error", "ok"], cells.Where(c => c["cell_type"]!.GetValue<string>() == "code").Select(c => Status(c)!));
        Assert.Equal("still ran\n", Text(cells.Last()["outputs"]![0]!["text"]));
    }

    [Fact]
    public async Task A_compile_error_reports_the_line_and_column_within_the_cell()
    {
        using var scratch = TempDir("compile");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "compile.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nvar a = 1;\n\nvar b = a + undefinedThing;\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(1, await Lab("run", input, "-o", output));

        var error = Cells(ReadJson(output))[^1]["outputs"]!.AsArray().Single()!;
        Assert.Equal("CompilationError", error["ename"]!.GetValue<string>());
        Assert.StartsWith("(3,13): error CS0103: The name 'undefinedThing' does not exist", error["traceback"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task An_endless_loop_is_stopped_by_the_cell_timeout_with_exit_code_3()
    {
        using var scratch = TempDir("loop");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "loop.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nConsole.WriteLine(\"before\");\n#!csharp\nConsole.WriteLine(\"spinning\");\nwhile (true) { }\n#!csharp\nConsole.WriteLine(\"never\");\n");
        var output = Path.Combine(dir, "out.ipynb");
        var clock = Stopwatch.StartNew();

        // The limit leaves room for the first cell's Roslyn start-up on a loaded 2-core CI machine.
        var exit = await Lab("run", input, "-o", output, "--cell-timeout", "10");

        Assert.Equal(3, exit);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the run took {clock.Elapsed}");
        await AssertValidNotebookAsync(output);
        var cells = Cells(ReadJson(output));
        var loop = cells.Single(c => Source(c).Contains("while (true)", StringComparison.Ordinal));
        Assert.Equal("timeout", Status(loop));
        Assert.Equal("spinning\n", Text(loop["outputs"]![0]!["text"]));
        Assert.Equal("TimeoutError", loop["outputs"]![1]!["ename"]!.GetValue<string>());
        Assert.True(loop["metadata"]!["lab"]!["duration"]!.GetValue<double>() >= 10);
        Assert.Equal("not-run", Status(cells[^1]));
        Assert.Equal("markdown", cells[0]["cell_type"]!.GetValue<string>());
        Assert.Equal("timeout", ReadJson(output)["metadata"]!["lab"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_run_timeout_also_stops_a_run_with_exit_code_3()
    {
        using var scratch = TempDir("run-timeout");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "slow.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nwhile (true) { System.Threading.Thread.Sleep(1); }\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(3, await Lab("run", input, "-o", output, "--timeout", "4"));
        await AssertValidNotebookAsync(output);
    }

    [Fact]
    public async Task The_executed_notebook_is_saved_after_every_cell_while_the_run_goes_on()
    {
        using var scratch = TempDir("partial");
        var dir = scratch.Path;
        var gate = Path.Combine(dir, "go");
        var input = Path.Combine(dir, "partial.dib");
        await File.WriteAllTextAsync(input,
            $"#!csharp\nConsole.WriteLine(\"first done\");\n#!csharp\nwhile (!System.IO.File.Exists({System.Text.Json.JsonSerializer.Serialize(gate)})) System.Threading.Thread.Sleep(5);\n");
        var output = Path.Combine(dir, "out.ipynb");

        // Every save renames a finished file over the output; each rename wakes the check below.
        using var watcher = new FileSystemWatcher(dir, "out.ipynb") { NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite };
        var saved = new SemaphoreSlim(0);
        watcher.Renamed += (_, _) => saved.Release();
        watcher.Created += (_, _) => saved.Release();
        watcher.Changed += (_, _) => saved.Release();
        watcher.EnableRaisingEvents = true;
        var run = Lab("run", input, "-o", output, "--timeout", "120");

        // Wait (bounded) until the notebook on disk shows the first cell finished while the second still blocks.
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        JsonObject? partial = null;
        while (!run.IsCompleted && !limit.IsCancellationRequested)
        {
            if (File.Exists(output) && ReadJson(output) is var nb && Status(Cells(nb)[0]) == "ok")
            {
                partial = nb;
                break;
            }
            await Task.WhenAny(run, saved.WaitAsync(limit.Token));
        }
        Assert.NotNull(partial);
        await AssertValidNotebookAsync(output);
        Assert.Null(Status(Cells(partial)[1]));
        Assert.Equal("running", partial["metadata"]!["lab"]!["status"]!.GetValue<string>());
        await File.WriteAllTextAsync(gate, "");

        Assert.Equal(0, await run);
        Assert.Equal("ok", Status(Cells(ReadJson(output))[1]));
    }

    [Fact]
    public async Task A_csx_script_loads_files_reads_Args_and_returns_its_exit_code()
    {
        using var scratch = TempDir("csx");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "script.ipynb");

        var exit = await Lab("run", Fixture("script.csx"), "-o", output, "--", "a", "b");

        Assert.Equal(3, exit);
        await AssertValidNotebookAsync(output);
        var outputs = Cells(ReadJson(output)).Single()["outputs"]!.AsArray();
        Assert.Equal("hello, a+b\n", Text(outputs.Single(o => o!["name"]?.GetValue<string>() == "stdout")!["text"]));
        Assert.Equal("2 args\n", Text(outputs.Single(o => o!["name"]?.GetValue<string>() == "stderr")!["text"]));
    }

    [Fact]
    public async Task The_dib_fixture_runs_its_csharp_cells_and_reports_the_pwsh_cell_as_skipped()
    {
        using var scratch = TempDir("dib");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "sample.ipynb");

        Assert.Equal(0, await Lab("run", Fixture("sample.dib"), "-o", output, "-p", "repeat", "3"));

        await AssertValidNotebookAsync(output);
        var cells = Cells(ReadJson(output));
        var result = cells.Single(c => Source(c).StartsWith("string.Join", StringComparison.Ordinal))["outputs"]![0]!;
        Assert.Equal("execute_result", result["output_type"]!.GetValue<string>());
        Assert.Equal("hi hi hi", Text(result["data"]!["text/plain"]));
        Assert.Equal("skipped", Status(cells.Single(c => Source(c).StartsWith("Write-Host", StringComparison.Ordinal))));
        Assert.Equal("total 55\n", Text(cells[^1]["outputs"]![0]!["text"]));
    }

    [Fact]
    public async Task NuGet_references_are_restored_by_the_kernel_from_an_i_source_folder()
    {
        // A local feed holding one real package, copied from the machine's NuGet cache.
        var cached = Directory.GetFiles(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "newtonsoft.json"), "*.nupkg", SearchOption.AllDirectories).First();
        var version = Path.GetFileName(Path.GetDirectoryName(cached))!;
        using var scratch = TempDir("nuget");
        var dir = scratch.Path;
        Directory.CreateDirectory(Path.Combine(dir, "feed"));
        File.Copy(cached, Path.Combine(dir, "feed", Path.GetFileName(cached)));
        var input = Path.Combine(dir, "nuget.dib");
        // The real kernel takes an absolute folder (a relative one fails with "Invalid URI", as in VS Code).
        await File.WriteAllTextAsync(input, $"#!csharp\n#i \"nuget: {Path.Combine(dir, "feed")}\"\n#r \"nuget: Newtonsoft.Json, {version}\"\nusing Newtonsoft.Json;\nJsonConvert.SerializeObject(new {{ a = 1 }})\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", output, "--no-progress"));

        var result = Cells(ReadJson(output))[0]["outputs"]!.AsArray().Single(o => o!["output_type"]!.GetValue<string>() == "execute_result")!;
        Assert.Equal("{\"a\":1}", Text(result["data"]!["text/plain"]));
    }

    [Fact]
    public async Task Display_Update_and_HTML_give_the_outputs_the_real_kernel_gives_in_Jupyter()
    {
        using var scratch = TempDir("display");
        var dir = scratch.Path;
        var input = Path.Combine(dir, "display.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nvar shown = display(\"draft\");\nConsole.WriteLine(\"between\");\nshown.Update(\"final\");\n42.Display();\nHTML(\"<b>bold</b>\")\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", output));

        await AssertValidNotebookAsync(output);
        var outputs = Cells(ReadJson(output))[0]["outputs"]!.AsArray().Select(o => o!.AsObject()).ToList();
        Assert.Equal(["display_data", "stream", "display_data", "execute_result"], outputs.Select(o => o["output_type"]!.GetValue<string>()));
        // As the dotnet-interactive host shows it in Jupyter: the C# kernel's update carries an id its display did not.
        Assert.Equal("draft", Text(outputs[0]["data"]!["text/plain"]));
        Assert.Equal("between\n", Text(outputs[1]["text"]));
        Assert.Contains("<pre>42</pre>", Text(outputs[2]["data"]!["text/html"]));
        Assert.Equal("<b>bold</b>", Text(outputs[3]["data"]!["text/html"]));
    }

    /// <summary>The kernel process runs with the lab's JIT settings (<see cref="LabRunner.Notebooks.KernelJit"/>), read from inside a cell.</summary>
    [Fact]
    public async Task The_kernel_runs_with_the_labs_JIT_settings()
    {
        using var scratch = TempDir("jit");
        var input = Path.Combine(scratch.Path, "jit.dib");
        await File.WriteAllTextAsync(input, "#!csharp\n$\"{System.Environment.GetEnvironmentVariable(\"DOTNET_TieredPGO\")}/{System.Environment.GetEnvironmentVariable(\"DOTNET_TC_CallCountThreshold\")}\"\n");
        var output = Path.Combine(scratch.Path, "out.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", output));
        Assert.Equal("0/1000", Text(Cells(ReadJson(output))[0]["outputs"]![0]!["data"]!["text/plain"]));
    }

    [Fact]
    public async Task Cwd_sets_the_working_directory_of_the_notebook_code()
    {
        using var scratch = TempDir("cwd");
        var dir = scratch.Path;
        var work = Directory.CreateDirectory(Path.Combine(dir, "work")).FullName;
        var input = Path.Combine(dir, "cwd.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nSystem.IO.Directory.GetCurrentDirectory()\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", output, "--cwd", work));
        Assert.Equal(work, Text(Cells(ReadJson(output))[0]["outputs"]![0]!["data"]!["text/plain"]));
        Assert.Equal(2, await Lab("run", input, "--cwd", Path.Combine(dir, "missing")));
    }

    [Fact]
    public async Task A_dll_reference_resolves_relative_to_the_notebook()
    {
        using var scratch = TempDir("dllref");
        var dir = scratch.Path;
        File.Copy(typeof(LabKernel.Images.SizeText).Assembly.Location, Path.Combine(dir, "CopiedKernel.dll"));
        var input = Path.Combine(dir, "dll.dib");
        await File.WriteAllTextAsync(input, "#!csharp\n#r \"CopiedKernel.dll\"\nLabKernel.Images.SizeText.Format(1)\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", output));
        Assert.Equal("1 B", Text(Cells(ReadJson(output))[0]["outputs"]![0]!["data"]!["text/plain"]));
    }
}
