using System.Text.Json.Nodes;
using LabKernel.Plots;

namespace LabKernel.Tests.Plots;

public sealed class FigureTests
{
    [Fact]
    public void A_line_figure_has_a_title_axis_labels_with_units_and_a_shaded_range()
    {
        var fig = Figure.Create("Write latency")
            .XAxis("time", "s").YAxis("latency", "ms", AxisScale.Log)
            .Line("p99", [0, 1, 2], [1.5, double.NaN, 3])
            .Shade(0.5, 1.5, "block-commit");

        var json = fig.ToPlotlyJson();

        var trace = json["data"]![0]!;
        Assert.Equal("scatter", trace["type"]!.GetValue<string>());
        Assert.Equal("lines", trace["mode"]!.GetValue<string>());
        Assert.Equal("[1.5,null,3]", trace["y"]!.ToJsonString());
        var layout = json["layout"]!;
        Assert.Equal("Write latency", layout["title"]!["text"]!.GetValue<string>());
        Assert.Equal("time (s)", layout["xaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("latency (ms)", layout["yaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("log", layout["yaxis"]!["type"]!.GetValue<string>());
        var shape = layout["shapes"]![0]!;
        Assert.Equal(("rect", "x", "paper", 0.5, 1.5), (shape["type"]!.GetValue<string>(), shape["xref"]!.GetValue<string>(), shape["yref"]!.GetValue<string>(), shape["x0"]!.GetValue<double>(), shape["x1"]!.GetValue<double>()));
        Assert.Equal("block-commit", layout["annotations"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Bar_box_heatmap_and_scatter_traces_have_their_plotly_types()
    {
        var t0 = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var fig = Figure.Create()
            .Bar("ops", ["read", "write"], [10, 20])
            .Bar("ops2", ["read", "write"], [11, 21])
            .Box("latency", [1, 2, 3, 100])
            .Heatmap("map", ["a", "b", "c"], ["r1", "r2"], new double[,] { { 1, 2, 3 }, { 4, 5, 6 } })
            .Scatter("samples", [t0, t0.AddSeconds(1)], [1, 2])
            .Shade(t0, t0.AddSeconds(1));

        var json = fig.ToPlotlyJson();

        Assert.Equal(["bar", "bar", "box", "heatmap", "scatter"], json["data"]!.AsArray().Select(t => t!["type"]!.GetValue<string>()));
        Assert.Equal("group", json["layout"]!["barmode"]!.GetValue<string>());
        Assert.Equal("[[1,2,3],[4,5,6]]", json["data"]![3]!["z"]!.ToJsonString());
        Assert.Equal("2026-01-02 03:04:05.000000", json["data"]![4]!["x"]![0]!.GetValue<string>());
        Assert.Equal("markers", json["data"]![4]!["mode"]!.GetValue<string>());
        Assert.Null(json["layout"]!["title"]);
    }

    [Fact]
    public void A_heatmap_whose_labels_do_not_match_its_matrix_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Figure.Create().Heatmap("m", ["a"], ["r"], new double[2, 2]));

        Assert.Contains("2x2", e.Message);
    }

    [Fact]
    public void The_text_form_summarizes_traces_axes_and_shaded_ranges()
    {
        var fig = Figure.Create("T").XAxis("time", "s").YAxis("iops").Line("a", [1, 2], [3, 4]).Box("b", [1]).Shade(1, 2, "job");

        Assert.Equal("Figure \"T\": line \"a\" (2 points); box \"b\" (1 values) (x: time (s), y: iops); shaded: job [1, 2]", fig.ToString());
    }

    [Fact]
    public void The_html_form_draws_with_plotly_and_escapes_script_endings_in_data()
    {
        var previous = PlotlyHtml.Embedding;
        try
        {
            PlotlyHtml.Embedding = PlotlyEmbedding.None;
            var html = Figure.Create("</script><b>x</b>").Line("a", [1], [2]).ToHtml();

            Assert.DoesNotContain("</script><b>", html);
            Assert.Contains("window.Plotly.newPlot", html);
            Assert.DoesNotContain("plotly.js v", html);

            PlotlyHtml.Embedding = PlotlyEmbedding.Always;
            var standalone = Figure.Create("y").Line("a", [1], [2]).ToHtml();
            Assert.Contains("if (!window.Plotly)", standalone);
            Assert.True(standalone.Length > 1_000_000, "plotly.js is inlined");
        }
        finally
        {
            PlotlyHtml.Embedding = previous;
        }
    }

    [Fact]
    public void The_embedded_plotly_is_the_npm_plotly_js_dist_min_bundle()
    {
        Assert.Equal("4.1.2", PlotlyHtml.LibraryVersion);
        Assert.DoesNotContain("</script", PlotlyHtml.LibraryScriptElement()[..^"</script>".Length], StringComparison.OrdinalIgnoreCase);
    }
}
