using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using LabKernel;
using Plotly.NET;

namespace LabNotebooks;

/// <summary>
/// The plotly.js that Plotly.NET bundles (an embedded resource of Plotly.NET.dll, <c>Plotly.NET.plotly-VERSION.min.js</c>),
/// so that reports draw charts offline without fetching anything at build or run time.
/// </summary>
public static partial class PlotlyJs
{
    private static readonly Lazy<(string Name, string Text)> Bundle = new(Load);

    /// <summary>The minified plotly.js, as Plotly.NET ships it.</summary>
    public static string Text => Bundle.Value.Text;

    /// <summary>The plotly.js version, read from the resource name (2.28.0 for Plotly.NET 6.0.0).</summary>
    public static string Version => ResourcePattern().Match(Bundle.Value.Name).Groups[1].Value;

    /// <summary>
    /// A &lt;script&gt; element that defines <c>window.Plotly</c> unless the page has it. AMD loaders (requirejs in
    /// notebook front ends) are hidden from the bundle so it always registers the global.
    /// </summary>
    public static string ScriptElement() =>
        "<script type=\"text/javascript\">if (!window.Plotly) { (function () { var define, module, exports;\n"
        + Text.Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase)
        + "\n}).call(window); }</script>";

    private static (string, string) Load()
    {
        var assembly = typeof(GenericChart).Assembly;
        var name = assembly.GetManifestResourceNames().FirstOrDefault(n => ResourcePattern().IsMatch(n))
            ?? throw new LabException($"{assembly.GetName().Name} {assembly.GetName().Version} carries no plotly-VERSION.min.js resource");
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return (name, reader.ReadToEnd());
    }

    [GeneratedRegex(@"plotly-(\d+\.\d+\.\d+)\.min\.js$")]
    private static partial Regex ResourcePattern();
}
