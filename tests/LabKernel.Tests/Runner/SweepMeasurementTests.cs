using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LabRunner.Commands;
using LabRunner.Notebooks;
using LabRunner.Reporting;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// A sweep's measurements without running a notebook: sweep.json, results.jsonl and sweep.html made from run records
/// already on disk (every combination finished, so the sweep only summarizes), and sweep.html's SVG charts rendered
/// from a hand-made sweep.json: one series per combination of the other parameters, failed runs left out.
/// </summary>
public sealed partial class SweepMeasurementTests
{
    private static string Notebook => Fixture("sweep.ipynb");

    /// <summary>Writes a finished run's result.json for each combination, as a sweep that ran them would have.</summary>
    private static List<SweepCombination> SeedFinishedRuns(string dir, string matrix)
    {
        var combinations = SweepMatrix.Combinations(SweepMatrix.Read(matrix)).ToList();
        foreach (var c in combinations)
        {
            var count = int.Parse(c.Parameters.First(p => p.Name == "Count").Value, CultureInfo.InvariantCulture);
            var folder = Path.Combine(dir, "runs", c.Id);
            Directory.CreateDirectory(folder);
            SweepRunner.WriteAtomically(Path.Combine(folder, SweepRunner.ResultFile), new JsonObject
            {
                ["id"] = c.Id,
                ["parameters"] = SweepMatrix.ToJson(c.Parameters),
                ["status"] = "ok",
                ["exit_code"] = 0,
                ["host"] = "embedded",
                ["duration"] = 1.5,
                ["findings"] = new JsonArray(new JsonObject { ["claim"] = "The file holds 1..Count", ["verdict"] = "confirmed", ["unexpected"] = false }),
                ["measurements"] = new JsonObject { ["lines_read"] = count, ["bytes_read"] = count * 2.5 },
                ["units"] = new JsonObject { ["lines_read"] = "lines" },
            });
        }
        return combinations;
    }

    [Fact]
    public async Task Given_finished_runs_that_measured_When_the_sweep_summarizes_Then_sweep_json_and_results_jsonl_carry_each_runs_measurements_and_the_units_once()
    {
        using var scratch = TempDir("sweep-measure");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Backend: [qemu, \"tcg only\"]\nCount: [3, 5]\n");
        var dir = Path.Combine(scratch.Path, "out");
        var combinations = SeedFinishedRuns(dir, matrix);

        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "-o", dir));

        var sweep = ReadJson(Path.Combine(dir, "sweep.json"));
        Assert.Equal("lines", sweep["units"]!["lines_read"]!.GetValue<string>());
        Assert.False(sweep["units"]!.AsObject().ContainsKey("bytes_read"));
        // The first axis whose values are all numbers, though Backend comes first.
        Assert.Equal("Count", sweep["plot_x"]!.GetValue<string>());
        var runs = sweep["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.Equal([3.0, 5.0, 3.0, 5.0], runs.Select(r => r["measurements"]!["lines_read"]!.GetValue<double>()));

        var lines = (await File.ReadAllTextAsync(Path.Combine(dir, SweepRunner.ResultsLines))).Split('\n');
        Assert.Equal("", lines[^1]);
        var records = lines[..^1].Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(combinations.Select(c => c.Id), records.Select(r => r["id"]!.GetValue<string>()));
        Assert.Equal(["qemu", "qemu", "tcg only", "tcg only"], records.Select(r => r["parameters"]!["Backend"]!.GetValue<string>()));
        Assert.Equal([7.5, 12.5, 7.5, 12.5], records.Select(r => r["measurements"]!["bytes_read"]!.GetValue<double>()));
        Assert.All(records, r => Assert.Equal("ok", r["status"]!.GetValue<string>()));
        Assert.False(File.Exists(Path.Combine(dir, SweepRunner.ResultsLines + ".tmp")));

        var html = await File.ReadAllTextAsync(Path.Combine(dir, "sweep.html"));
        Assert.Equal(2, Regex.Matches(html, "<svg class=\"chart\"").Count);
        Assert.Equal(["Backend=qemu", "Backend=tcg only", "Backend=qemu", "Backend=tcg only"], SeriesLabels(html));
        Assert.DoesNotContain("<script", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_plot_x_naming_a_categorical_axis_When_the_sweep_summarizes_Then_sweep_json_says_so_and_each_series_is_one_Count()
    {
        using var scratch = TempDir("sweep-measure");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Backend: [qemu, \"tcg only\"]\nCount: [3, 5]\n");
        var dir = Path.Combine(scratch.Path, "out");
        SeedFinishedRuns(dir, matrix);

        Assert.Equal(0, await Lab("sweep", Notebook, "--matrix", matrix, "-o", dir, "--plot-x", "Backend"));

        Assert.Equal("Backend", ReadJson(Path.Combine(dir, "sweep.json"))["plot_x"]!.GetValue<string>());
        var html = await File.ReadAllTextAsync(Path.Combine(dir, "sweep.html"));
        var chart = Charts(html)[0];
        Assert.Equal(["Count=3: qemu=3, tcg only=3", "Count=5: qemu=5, tcg only=5"], Series(chart));
    }

    [Fact]
    public async Task Given_plot_x_that_is_not_a_matrix_axis_When_swept_Then_one_line_says_so_it_exits_2_and_nothing_is_written()
    {
        using var scratch = TempDir("sweep-measure");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Count: [3, 5]\n");
        var dir = Path.Combine(scratch.Path, "out");
        var (dotnet, prefix) = KernelClient.KernelCommandLine();

        var r = await LabKernel.Processes.ProcessRunner.RunAsync(dotnet, [.. prefix, "sweep", Notebook, "--matrix", matrix, "-o", dir, "--plot-x", "Size"],
            new LabKernel.Processes.ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(1) });

        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.StandardError}");
        var line = r.StandardError.TrimEnd('\n');
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith($"lab: sweep: --plot-x Size: not a parameter of --matrix {matrix} (Count)", line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Given_a_hand_made_sweep_When_rendered_Then_each_measurement_has_a_chart_with_one_series_per_other_parameter_combination_and_failed_runs_left_out()
    {
        var sweep = HandMadeSweep(plotX: null);

        var html = SweepReport.Render(sweep);

        var charts = Charts(html);
        Assert.Equal(2, charts.Count);
        Assert.Contains("data-x-parameter=\"Size\"", charts[0], StringComparison.Ordinal);
        Assert.Contains("<figcaption>iops (IOPS) against Size</figcaption>", html, StringComparison.Ordinal);
        // Size=4 with Mode=b failed: not drawn, though its record has a number.
        Assert.Equal(
            ["Mode=a, Cache=none: 1=100, 2=90, 4=70", "Mode=b, Cache=none: 1=50, 2=45.5"],
            Series(charts[0]));
        // A measurement only some runs made is drawn from those runs.
        Assert.Equal(["Mode=a, Cache=none: 4=3"], Series(charts[1]));
        // Left to right along x, at positions that grow with the value (numeric x: 1, 2, 4 are not evenly spaced).
        var xs = PolylineXs(charts[0]).First();
        Assert.Equal(3, xs.Count);
        Assert.True(xs[0] < xs[1] && xs[1] < xs[2], string.Join(",", xs));
        // Coordinates are written to a tenth of a pixel.
        Assert.InRange(xs[2] - xs[1] - 2 * (xs[1] - xs[0]), -0.3, 0.3);
        // A legend line per series.
        Assert.Equal(2, Regex.Matches(Regex.Match(charts[0], "<g class=\"legend\">(.*?)</g>").Groups[1].Value, "<text").Count);
        Assert.DoesNotContain("<script", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http", html.Replace("http-equiv", ""), StringComparison.Ordinal);
    }

    [Fact]
    public void Given_a_hand_made_sweep_with_plot_x_on_a_categorical_axis_When_rendered_Then_x_is_that_axis_values_in_matrix_order_evenly_spaced()
    {
        var html = SweepReport.Render(HandMadeSweep(plotX: "Mode"));

        var chart = Charts(html)[0];
        Assert.Equal(
            ["Size=1, Cache=none: a=100, b=50", "Size=2, Cache=none: a=90, b=45.5", "Size=4, Cache=none: a=70"],
            Series(chart));
        var xs = PolylineXs(chart).First();
        Assert.True(xs[0] < xs[1]);
    }

    [Fact]
    public void Given_a_sweep_that_measured_nothing_When_rendered_Then_there_is_no_chart_section()
    {
        var sweep = HandMadeSweep(plotX: null);
        foreach (var run in sweep["runs"]!.AsArray())
        {
            run!["measurements"] = new JsonObject();
        }

        Assert.DoesNotContain("lab-charts", SweepReport.Render(sweep), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Backend=qemu,tcg;Count=1,10", "Count")]
    [InlineData("Backend=qemu,tcg;Mode=x,y", "Backend")]
    [InlineData("Size=1.5,2e3;Count=1,2", "Size")]
    [InlineData("Size=1,big;Count=1,2", "Count")]
    public void Given_a_matrix_When_no_plot_x_is_given_Then_the_default_is_the_first_all_numeric_axis_else_the_first(string matrix, string expected)
    {
        var axes = matrix.Split(';').Select(a => a.Split('=')).Select(a => new SweepAxis(a[0], a[1].Split(','))).ToList();

        Assert.Equal(expected, SweepReport.DefaultPlotX(axes));
    }

    /// <summary>
    /// Size (numeric) x Mode x Cache (one value): six runs, one of them failed, one measuring a second name; plot_x as
    /// given (null: sweep.json from before --plot-x, the report choosing).
    /// </summary>
    private static JsonObject HandMadeSweep(string? plotX)
    {
        JsonObject Run(string size, string mode, string status, double iops, double? extra = null)
        {
            var measurements = new JsonObject { ["iops"] = iops };
            if (extra is { } e)
            {
                measurements["misses"] = e;
            }
            return new JsonObject
            {
                ["id"] = $"Size={size},Mode={mode}",
                ["parameters"] = new JsonObject { ["Size"] = size, ["Mode"] = mode, ["Cache"] = "none" },
                ["status"] = status,
                ["findings"] = new JsonObject(),
                ["measurements"] = measurements,
                ["folder"] = $"runs/Size={size},Mode={mode}",
            };
        }
        var sweep = new JsonObject
        {
            ["notebook"] = "/x/04.ipynb",
            ["matrix"] = new JsonObject { ["Size"] = new JsonArray("1", "2", "4"), ["Mode"] = new JsonArray("a", "b"), ["Cache"] = new JsonArray("none") },
            ["counts"] = new JsonObject { ["ok"] = 5, ["failed"] = 1 },
            ["exit_code"] = 1,
            ["finished"] = "2026-12-04T20:00:00.000000+00:00",
            ["units"] = new JsonObject { ["iops"] = "IOPS" },
            ["runs"] = new JsonArray(
                Run("1", "a", "ok", 100), Run("1", "b", "ok", 50), Run("2", "a", "ok", 90),
                Run("2", "b", "refuted", 45.5), Run("4", "a", "ok", 70, extra: 3), Run("4", "b", "failed", 1)),
        };
        if (plotX is not null)
        {
            sweep["plot_x"] = plotX;
        }
        return sweep;
    }

    private static List<string> Charts(string html) => [.. ChartSvg().Matches(html).Select(m => m.Value)];

    private static List<string> SeriesLabels(string html) => [.. SeriesGroup().Matches(html).Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value))];

    /// <summary>Each series of a chart as "label: x=y, x=y", its points in drawing order (x as the matrix gives it).</summary>
    private static List<string> Series(string chart) =>
        [.. SeriesGroup().Matches(chart).Select(m =>
            System.Net.WebUtility.HtmlDecode(m.Groups[1].Value) + ": " + string.Join(", ", PointData().Matches(m.Groups[2].Value).Select(p =>
                $"{System.Net.WebUtility.HtmlDecode(p.Groups[1].Value)}={double.Parse(p.Groups[2].Value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)}")))];

    private static IEnumerable<List<double>> PolylineXs(string chart) =>
        Polyline().Matches(chart).Select(m => m.Groups[1].Value.Split(' ').Select(p => double.Parse(p.Split(',')[0], CultureInfo.InvariantCulture)).ToList());

    [GeneratedRegex("<svg class=\"chart\".*?</svg>", RegexOptions.Singleline)]
    private static partial Regex ChartSvg();

    [GeneratedRegex("<g class=\"series\" data-series=\"([^\"]*)\">(.*?)</g>", RegexOptions.Singleline)]
    private static partial Regex SeriesGroup();

    [GeneratedRegex("<circle class=\"point\"[^>]*data-x=\"([^\"]*)\" data-y=\"([^\"]*)\"")]
    private static partial Regex PointData();

    [GeneratedRegex("<polyline class=\"line\"[^>]*points=\"([^\"]*)\"")]
    private static partial Regex Polyline();
}
