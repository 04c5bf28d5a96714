using System.Text.Json.Nodes;
using Plotly.NET.CSharp;

namespace LabNotebooks.Tests;

public sealed class ChartTests
{
    private static Plotly.NET.GenericChart Lines() =>
        Chart.Line<double, double, string>([0, 1, 2], [1.5, 2, 3], Name: "lines")
            .WithAxisTitles("time (s)", "lines written")
            .Titled("Guest writes")
            .Shade(0.5, 1.5, "snapshot");

    [Fact]
    public void Given_a_shaded_window_When_the_chart_is_serialized_Then_it_is_a_rect_shape_across_the_plot_height_with_its_label()
    {
        var json = ChartJson.ToPlotlyJson(Lines());

        var shape = json["layout"]!["shapes"]![0]!;
        Assert.Equal(("rect", "x", "paper", 0.5, 1.5, 0, 1), (shape["type"]!.GetValue<string>(), shape["xref"]!.GetValue<string>(), shape["yref"]!.GetValue<string>(),
            shape["x0"]!.GetValue<double>(), shape["x1"]!.GetValue<double>(), shape["y0"]!.GetValue<int>(), shape["y1"]!.GetValue<int>()));
        Assert.Equal("below", shape["layer"]!.GetValue<string>());
        Assert.Equal("snapshot", json["layout"]!["annotations"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Given_two_windows_When_shaded_Then_both_shapes_are_kept_in_order()
    {
        var chart = Lines().Shade(2.0, 2.5, "block-commit", "#7fb3d5");

        var shapes = ChartJson.ToPlotlyJson(chart)["layout"]!["shapes"]!.AsArray();

        Assert.Equal([0.5, 2.0], shapes.Select(s => s!["x0"]!.GetValue<double>()));
        Assert.Equal("#7fb3d5", shapes[1]!["fillcolor"]!.GetValue<string>());
    }

    [Fact]
    public void Given_time_windows_When_shaded_Then_the_x_values_are_plotly_date_strings_in_utc()
    {
        var t0 = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(1));
        var chart = Chart.Scatter<DateTime, double, string>([t0.UtcDateTime], [1], Plotly.NET.StyleParam.Mode.Markers).Shade(t0, t0.AddSeconds(1));

        var shape = ChartJson.ToPlotlyJson(chart)["layout"]!["shapes"]![0]!;

        Assert.Equal("2026-01-02 02:04:05.000000", shape["x0"]!.GetValue<string>());
    }

    [Fact]
    public void The_figure_json_has_data_and_layout_only_and_no_fixed_width()
    {
        var json = ChartJson.ToPlotlyJson(Lines());

        Assert.Equal(["data", "layout"], json.Select(kv => kv.Key));
        Assert.Equal("scatter", json["data"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("[1.5,2,3]", json["data"]![0]!["y"]!.ToJsonString().Replace(".0", "", StringComparison.Ordinal));
        Assert.Null(json["layout"]!["width"]);
        Assert.Equal("time (s)", json["layout"]!["xaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("lines written", json["layout"]!["yaxis"]!["title"]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void The_text_form_summarizes_title_traces_axes_and_shaded_windows()
    {
        var chart = Lines().Shade(2, 3, "commit");

        Assert.Equal("Chart \"Guest writes\": line \"lines\" (3 points) (x: time (s), y: lines written); shaded: snapshot [0.5, 1.5], commit [2, 3]", ChartJson.Describe(chart));
    }

    [Fact]
    public void The_html_summary_is_light_and_escaped_and_never_carries_plotly_js()
    {
        var html = ChartJson.ToHtmlSummary(Lines().Titled("</script><b>x</b>"));

        Assert.True(html.Length < 1000, $"{html.Length} bytes");
        Assert.DoesNotContain("<b>", html);
        Assert.DoesNotContain("<script", html);
    }

    [Fact]
    public void Plotly_js_comes_from_the_Plotly_NET_package_and_its_script_element_cannot_end_early()
    {
        Assert.Equal("2.28.0", PlotlyJs.Version);
        Assert.True(PlotlyJs.Text.Length > 1_000_000, "the full bundle");
        Assert.DoesNotContain("</script", PlotlyJs.ScriptElement()[..^"</script>".Length], StringComparison.OrdinalIgnoreCase);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(PlotlyJs.ScriptElement(), "if \\(!window.Plotly\\)"));
    }

    [Fact]
    public void A_standalone_page_inlines_plotly_js_and_draws_the_figure()
    {
        var page = ChartJson.ToStandaloneHtml(Lines());

        Assert.Contains(PlotlyJs.Text[..200], page);
        Assert.Contains("Plotly.newPlot('chart'", page);
        Assert.DoesNotContain("<script src", page);
    }

    [Fact]
    public void Given_a_host_with_an_older_FSharp_Core_of_the_same_major_version_When_Plotly_NET_asks_for_a_newer_one_Then_the_loaded_one_is_handed_out()
    {
        var loaded = typeof(Microsoft.FSharp.Core.FSharpOption<int>).Assembly;
        var version = loaded.GetName().Version!;
        var context = System.Runtime.Loader.AssemblyLoadContext.Default;

        Assert.Same(loaded, FSharpCoreUnification.Resolve(context, new System.Reflection.AssemblyName($"FSharp.Core, Version={version.Major}.{version.Minor + 1}.0.0")));
        Assert.Null(FSharpCoreUnification.Resolve(context, new System.Reflection.AssemblyName($"FSharp.Core, Version={version.Major + 1}.0.0.0")));
        Assert.Null(FSharpCoreUnification.Resolve(context, new System.Reflection.AssemblyName("Other, Version=1.0.0.0")));
    }
}
