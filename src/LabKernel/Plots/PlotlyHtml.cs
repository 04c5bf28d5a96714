using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Reports;

namespace LabKernel.Plots;

/// <summary>Where the HTML of a figure gets plotly.js from.</summary>
public enum PlotlyEmbedding
{
    /// <summary>The first figure rendered in this process carries plotly.js inline; later ones reuse window.Plotly (VS Code).</summary>
    InlineOnce,

    /// <summary>Every figure carries plotly.js (standalone HTML files).</summary>
    Always,

    /// <summary>Figures never carry it; the page provides window.Plotly (lab reports, which inline it once).</summary>
    None,
}

/// <summary>Renders plotly figures as HTML, with the plotly.js (npm plotly.js-dist-min) embedded in LabKernel.dll.</summary>
public static class PlotlyHtml
{
    private static readonly Lazy<string> Library = new(LoadLibrary);
    private static int _inlined;

    /// <summary>How figures get plotly.js. <c>lab run</c> sets <see cref="PlotlyEmbedding.None"/>.</summary>
    /// <remarks>The default comes from the environment variable LABKERNEL_PLOTLY_EMBED (once, always, none), which
    /// also reaches a second copy of LabKernel loaded by a script host.</remarks>
    public static PlotlyEmbedding Embedding { get; set; } = DefaultEmbedding();

    /// <summary>The plotly.js bundle (minified), as embedded at build time.</summary>
    public static string LibraryJs => Library.Value;

    /// <summary>The plotly.js version the bundle announces.</summary>
    public static string LibraryVersion
    {
        get
        {
            var head = LibraryJs.AsSpan(0, Math.Min(400, LibraryJs.Length)).ToString();
            var m = System.Text.RegularExpressions.Regex.Match(head, @"plotly\.js v(\d+\.\d+\.\d+)");
            return m.Success ? m.Groups[1].Value : "unknown";
        }
    }

    /// <summary>
    /// A &lt;script&gt; element that defines window.Plotly unless the page has it. AMD loaders (requirejs in
    /// notebook front ends) are hidden from the bundle so it always registers the global.
    /// </summary>
    public static string LibraryScriptElement() =>
        "<script type=\"text/javascript\">if (!window.Plotly) { (function () { var define, module, exports;\n"
        + LibraryJs.Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase)
        + "\n}).call(window); }</script>";

    /// <summary>A div with the given id and a script drawing <paramref name="figure"/> into it.</summary>
    public static string Render(JsonObject figure, string elementId, string fallbackText)
    {
        var include = Embedding switch
        {
            PlotlyEmbedding.Always => true,
            PlotlyEmbedding.InlineOnce => Interlocked.Exchange(ref _inlined, 1) == 0,
            _ => false,
        };
        var sb = new StringBuilder();
        if (include)
        {
            sb.Append(LibraryScriptElement());
        }
        var json = figure.ToJsonString().Replace("</", "<\\/", StringComparison.Ordinal);
        sb.Append("<div class=\"lab-plot\" id=\"").Append(elementId).Append("\">")
          .Append("<noscript>").Append(ValueText.Html(fallbackText)).Append("</noscript></div>");
        sb.Append("<script type=\"text/javascript\">(function () { var fig = ").Append(json).Append(";\n")
          .Append("var el = document.getElementById('").Append(elementId).Append("');\n")
          .Append("if (window.Plotly) { window.Plotly.newPlot(el, fig.data, fig.layout, {responsive: true}); }\n")
          .Append("else { el.textContent = ").Append(JsonValue.Create(fallbackText)!.ToJsonString().Replace("</", "<\\/", StringComparison.Ordinal)).Append("; }\n")
          .Append("})();</script>");
        return sb.ToString();
    }

    private static PlotlyEmbedding DefaultEmbedding() => Environment.GetEnvironmentVariable("LABKERNEL_PLOTLY_EMBED")?.Trim().ToLowerInvariant() switch
    {
        "none" => PlotlyEmbedding.None,
        "always" => PlotlyEmbedding.Always,
        _ => PlotlyEmbedding.InlineOnce,
    };

    private static string LoadLibrary()
    {
        using var stream = typeof(PlotlyHtml).Assembly.GetManifestResourceStream("LabKernel.Plots.plotly.min.js")
            ?? throw new LabException("plotly.js is not embedded in LabKernel.dll (the build installs it with npm into src/LabKernel/Plots/plotly)");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
