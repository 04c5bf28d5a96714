using System.Text.Json.Nodes;
using LabKernel.Processes;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// `lab sweep` for real, in this process, on a notebook without a guest (Fixtures/Notebooks/sweep.ipynb: the findings
/// fixture with a `Refute` parameter that refutes a claim, and the `Backend`/`LibvirtUri` parameters --hosts sets):
/// records and summary, measurements in them and a chart of them, resume, a half-written run folder, -j 2, a refuted
/// combination, and usage errors in one line. These run the fixture, which takes LabKernel and LabNotebooks from the
/// local package source: a change to either is tested here once it is packed.
/// </summary>
public sealed class SweepTests
{
    private static string Notebook => Fixture("sweep.ipynb");

    private static string WriteFile(string dir, string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static JsonObject Result(string sweep, JsonObject run) => ReadJson(Path.Combine(sweep, run["folder"]!.GetValue<string>(), "result.json"));

    private static List<JsonObject> Runs(string sweep) => ReadJson(Path.Combine(sweep, "sweep.json"))["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();

    [Fact]
    public async Task Given_a_2x2_matrix_When_swept_twice_and_a_record_is_lost_Then_4_runs_are_recorded_the_second_sweep_repeats_none_and_only_the_unfinished_one_runs_again()
    {
        using var scratch = TempDir("sweep");
        var matrix = WriteFile(scratch.Path, "matrix.yaml", "Count: [3, 5]\nBackend: [qemu, \"tcg only\"]\n");
        var dir = Path.Combine(scratch.Path, "out");

        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "-o", dir, "-j", "2"));

        var runs = Runs(dir);
        Assert.Equal(4, runs.Count);
        // The stable order: the first name varies slowest.
        Assert.Equal(["3 qemu", "3 tcg only", "5 qemu", "5 tcg only"], runs.Select(r => $"{r["parameters"]!["Count"]} {r["parameters"]!["Backend"]}"));
        Assert.Equal(4, runs.Select(r => r["id"]!.GetValue<string>()).Distinct().Count());
        foreach (var run in runs)
        {
            Assert.Equal("ok", run["status"]!.GetValue<string>());
            var folder = Path.Combine(dir, run["folder"]!.GetValue<string>());
            await AssertValidNotebookAsync(Path.Combine(folder, "notebook.ipynb"));
            Assert.True(File.Exists(Path.Combine(folder, "report.html")));
            var result = Result(dir, run);
            Assert.Equal(0, result["exit_code"]!.GetValue<int>());
            Assert.Equal("embedded", result["host"]!.GetValue<string>());
            Assert.Equal(RunEnvironment.LabVersion, result["versions"]!["lab"]!.GetValue<string>());
            Assert.NotNull(result["versions"]!["kernel"]);
            Assert.NotNull(result["accelerator"]);
            Assert.True(result["duration"]!.GetValue<double>() > 0);
            var verdicts = result["findings"]!.AsArray().ToDictionary(f => f!["claim"]!.GetValue<string>(), f => f!["verdict"]!.GetValue<string>());
            Assert.Equal("confirmed", verdicts["The file holds 1..Count"]);
            Assert.Equal("confirmed", verdicts["The sweep's check holds"]);
            Assert.Equal("info", verdicts["backend"]);
            Assert.Equal("confirmed", run["findings"]!["The sweep's check holds"]!.GetValue<string>());
            // The fixture measures the lines it read: Count, from the run's own findings output.
            var count = double.Parse(run["parameters"]!["Count"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(count, result["measurements"]!["lines_read"]!.GetValue<double>());
            Assert.Equal("lines", result["units"]!["lines_read"]!.GetValue<string>());
            Assert.Equal(count, run["measurements"]!["lines_read"]!.GetValue<double>());
            Assert.False(File.Exists(Path.Combine(folder, "result.json.tmp")));
        }
        var summary = ReadJson(Path.Combine(dir, "sweep.json"));
        Assert.Equal("lines", summary["units"]!["lines_read"]!.GetValue<string>());
        Assert.Equal("Count", summary["plot_x"]!.GetValue<string>());
        var jsonl = File.ReadAllLines(Path.Combine(dir, "results.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([3.0, 3.0, 5.0, 5.0], jsonl.Select(r => r["measurements"]!["lines_read"]!.GetValue<double>()));
        var html = await File.ReadAllTextAsync(Path.Combine(dir, "sweep.html"));
        Assert.Equal(4, html.Split("<tr class=\"run status-ok\"").Length - 1);
        Assert.Contains("<th class=\"claim\">The sweep&#39;s check holds</th>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http", html.Replace("http-equiv", ""), StringComparison.Ordinal);
        // One chart, lines_read against Count, a series per Backend, each through Count's two values.
        Assert.Equal(1, html.Split("<svg class=\"chart\"").Length - 1);
        Assert.Contains("<figcaption>lines_read (lines) against Count</figcaption>", html, StringComparison.Ordinal);
        Assert.Contains("<g class=\"series\" data-series=\"Backend=qemu\">", html, StringComparison.Ordinal);
        Assert.Contains("<g class=\"series\" data-series=\"Backend=tcg only\">", html, StringComparison.Ordinal);
        Assert.Equal(4, html.Split("<circle class=\"point\"").Length - 1);
        Assert.Contains("data-x=\"5\" data-y=\"5\"", html, StringComparison.Ordinal);

        // Resume: nothing finished runs again.
        var started = runs.ToDictionary(r => r["id"]!.GetValue<string>(), r => Result(dir, r)["started"]!.GetValue<string>());
        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "-o", dir));
        Assert.Equal(started, Runs(dir).ToDictionary(r => r["id"]!.GetValue<string>(), r => Result(dir, r)["started"]!.GetValue<string>()));

        // A run folder without result.json (a sweep killed mid-run) is run again from scratch; a file the sweep did
        // not write there stays.
        var lost = runs[1];
        var lostFolder = Path.Combine(dir, lost["folder"]!.GetValue<string>());
        File.Delete(Path.Combine(lostFolder, "result.json"));
        await File.WriteAllTextAsync(Path.Combine(lostFolder, "notebook.ipynb"), "{ half written");
        await File.WriteAllTextAsync(Path.Combine(lostFolder, "mine.txt"), "not the sweep's");
        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "-o", dir));
        var after = Runs(dir).ToDictionary(r => r["id"]!.GetValue<string>(), r => Result(dir, r)["started"]!.GetValue<string>());
        foreach (var (id, time) in started)
        {
            if (id == lost["id"]!.GetValue<string>())
            {
                Assert.NotEqual(time, after[id]);
            }
            else
            {
                Assert.Equal(time, after[id]);
            }
        }
        await AssertValidNotebookAsync(Path.Combine(lostFolder, "notebook.ipynb"));
        Assert.True(File.Exists(Path.Combine(lostFolder, "mine.txt")));
    }

    [Fact]
    public async Task Given_a_combination_that_refutes_a_claim_When_swept_with_j1_and_j2_Then_both_exit_4_with_the_same_results_and_the_table_shows_it()
    {
        using var scratch = TempDir("sweep-refuted");
        var matrix = WriteFile(scratch.Path, "matrix.json", "{\"Refute\": [false, true]}");
        var one = Path.Combine(scratch.Path, "j1");
        var two = Path.Combine(scratch.Path, "j2");

        Assert.Equal(4, await Lab("sweep", Notebook, "--matrix", matrix, "-o", one, "-j", "1"));
        Assert.Equal(4, await Lab("sweep", Notebook, "--matrix", matrix, "-o", two, "-j", "2"));

        string Key(JsonObject r) => $"{r["id"]} {r["status"]} {r["exit_code"]} {r["findings"]!.ToJsonString()}";
        Assert.Equal(Runs(one).Select(Key), Runs(two).Select(Key));
        var runs = Runs(one);
        Assert.Equal(["ok", "refuted"], runs.Select(r => r["status"]!.GetValue<string>()));
        Assert.Equal(4, runs[1]["exit_code"]!.GetValue<int>());
        Assert.Equal("refuted", runs[1]["findings"]!["The sweep's check holds"]!.GetValue<string>());
        Assert.Equal(1, ReadJson(Path.Combine(one, "sweep.json"))["counts"]!["refuted"]!.GetValue<int>());
        var html = await File.ReadAllTextAsync(Path.Combine(one, "sweep.html"));
        Assert.Contains("<tr class=\"run status-refuted\"", html, StringComparison.Ordinal);
        Assert.Contains("<td class=\"verdict verdict-unexpected\">refuted</td>", html, StringComparison.Ordinal);

        // A refuted run is finished: a resumed sweep does not run it again and still exits 4.
        var started = Result(one, runs[1])["started"]!.GetValue<string>();
        Assert.Equal(4, await Lab("sweep", Notebook, "--matrix", matrix, "-o", one));
        Assert.Equal(started, Result(one, Runs(one)[1])["started"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_hosts_on_this_machine_one_of_them_down_When_swept_Then_the_run_gets_Backend_libvirt_and_the_uri_and_is_retried_once_on_the_other_host()
    {
        using var scratch = TempDir("sweep-hosts");
        var matrix = WriteFile(scratch.Path, "matrix.yaml", "Count: [4]\n");
        // The fixture fails at qemu:///session as a libvirt connection failure would (virConnectOpen); the first free
        // slot is the first host's.
        var hosts = WriteFile(scratch.Path, "hosts.yaml", "- uri: qemu:///session\n- {uri: \"qemu:///system\", jobs: 2}\n");
        var dir = Path.Combine(scratch.Path, "out");

        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "--hosts", hosts, "-o", dir));

        var result = Result(dir, Runs(dir).Single());
        Assert.Equal("ok", result["status"]!.GetValue<string>());
        Assert.Equal("qemu:///system", result["host"]!.GetValue<string>());
        Assert.Equal("qemu:///session", result["retry_of"]!.GetValue<string>());
        Assert.Equal("libvirt", result["injected"]!["Backend"]!.GetValue<string>());
        Assert.Equal("qemu:///system", result["injected"]!["LibvirtUri"]!.GetValue<string>());
        Assert.Contains(result["findings"]!.AsArray(), f => f!["claim"]!.GetValue<string>() == "backend" && f["observed"]!.GetValue<string>() == "libvirt qemu:///system");
    }

    /// <summary>Requests the interruption when the sweep's line says the second run starts, as a Ctrl-C then would.</summary>
    private sealed class InterruptAtSecondRun(RunInterruption interruption) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.StartsWith("lab sweep: [2] ", StringComparison.Ordinal) == true && value.EndsWith(" on embedded", StringComparison.Ordinal))
            {
                interruption.Request(System.Runtime.InteropServices.PosixSignal.SIGINT);
            }
        }
    }

    [Fact]
    public async Task Given_a_sweep_interrupted_during_its_second_run_When_it_ends_Then_no_further_run_starts_the_running_one_is_interrupted_and_sweep_json_says_so_with_130()
    {
        using var scratch = TempDir("sweep-interrupted");
        var dir = Path.Combine(scratch.Path, "out");
        var axes = new[] { new SweepAxis("Count", ["1", "2", "3"]) };
        using var interruption = RunInterruption.Manual();
        var sweep = new LabRunner.Commands.SweepRunner(hosts: null, jobs: 1)
        {
            NotebookPath = Notebook,
            Directory = dir,
            Axes = axes,
            Combinations = SweepMatrix.Combinations(axes),
            Interruption = interruption,
            Log = new InterruptAtSecondRun(interruption),
        };

        Assert.Equal(130, await sweep.RunAsync());

        var summary = ReadJson(Path.Combine(dir, "sweep.json"));
        Assert.Equal("interrupted", summary["status"]!.GetValue<string>());
        Assert.Equal(["ok", "interrupted", "not-run"], Runs(dir).Select(r => r["status"]!.GetValue<string>()));
        Assert.Equal(130, Result(dir, Runs(dir)[1])["exit_code"]!.GetValue<int>());
        Assert.False(Directory.Exists(Path.Combine(dir, "runs", SweepMatrix.Combinations(axes)[2].Id)));
    }

    private static async Task<ProcessResult> LabProcessAsync(params string[] args)
    {
        var (dotnet, prefix) = KernelClient.KernelCommandLine();
        return await ProcessRunner.RunAsync(dotnet, [.. prefix, .. args], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(1) });
    }

    public static TheoryData<string, string, string> UsageErrors() => new()
    {
        { "missing matrix", "", "lab: --matrix {dir}/nope.yaml: no such file" },
        { "unknown parameter", "Count: [1]\nBogus: [2]\n", "lab: sweep: Count=1,Bogus=2-" },
        { "empty list", "Count: []\n", "lab: --matrix {dir}/matrix.yaml: Count has no values (an empty list gives no combination)" },
        { "j 0", "Count: [1]\n", "lab: sweep: -j 0: expected a whole number of at least 1" },
        { "j abc", "Count: [1]\n", "lab: sweep: -j abc: expected a whole number of at least 1" },
        { "remote host", "Count: [1]\n", "lab: --hosts {dir}/hosts.yaml: qemu+tls://build-7.example.org/system is another host without SSH: the lab works on its image files over SSH" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task Given_a_usage_error_When_swept_Then_one_line_says_what_is_wrong_it_exits_2_and_nothing_runs(string what, string matrixText, string expected)
    {
        using var scratch = TempDir("sweep-usage");
        var matrix = what == "missing matrix" ? Path.Combine(scratch.Path, "nope.yaml") : WriteFile(scratch.Path, "matrix.yaml", matrixText);
        var hosts = WriteFile(scratch.Path, "hosts.yaml", "- uri: qemu+tls://build-7.example.org/system\n  jobs: 1\n");
        var dir = Path.Combine(scratch.Path, "out");
        string[] args = what switch
        {
            "j 0" => ["sweep", Notebook, "--matrix", matrix, "-o", dir, "-j", "0"],
            "j abc" => ["sweep", Notebook, "--matrix", matrix, "-o", dir, "-j", "abc"],
            "remote host" => ["sweep", Notebook, "--matrix", matrix, "-o", dir, "--hosts", hosts],
            _ => ["sweep", Notebook, "--matrix", matrix, "-o", dir],
        };

        var r = await LabProcessAsync(args);

        Assert.True(r.ExitCode == 2, $"{what}: exit {r.ExitCode}: {r.StandardError}");
        var line = r.StandardError.TrimEnd('\n');
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith(expected.Replace("{dir}", scratch.Path), line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir), "no run folder before the command line is valid");
    }

    [Fact]
    public void Given_three_axes_When_combined_Then_the_product_is_in_a_stable_order_with_stable_distinct_ids()
    {
        var combos = SweepMatrix.Combinations([new SweepAxis("A", ["1", "2"]), new SweepAxis("B", ["x", "y/z"]), new SweepAxis("C", ["[4, 8]"])]);

        Assert.Equal(["A=1,B=x,C=[4, 8]", "A=1,B=y/z,C=[4, 8]", "A=2,B=x,C=[4, 8]", "A=2,B=y/z,C=[4, 8]"],
            combos.Select(c => string.Join(",", c.Parameters.Select(p => $"{p.Name}={p.Value}"))));
        Assert.Equal(combos.Select(c => c.Id), SweepMatrix.Combinations([new SweepAxis("A", ["1", "2"]), new SweepAxis("B", ["x", "y/z"]), new SweepAxis("C", ["[4, 8]"])]).Select(c => c.Id));
        Assert.All(combos, c => Assert.DoesNotContain('/', c.Id));
        Assert.Equal(4, combos.Select(c => c.Id).Distinct().Count());
    }
}
