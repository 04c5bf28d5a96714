using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.Images;
using Plotly.NET;

namespace LabNotebooks;

/// <summary>
/// What the lab's values look like in a notebook, for types LabNotebooks cannot decorate with a
/// <see cref="TypeFormatterSourceAttribute"/> (Plotly.NET's <see cref="GenericChart"/>, LabKernel's chains and
/// findings). <c>lab run</c> asks <see cref="TryFormat"/>; the .NET Interactive kernel gets the same formatters
/// registered by the package's <c>interactive-extensions/dotnet/extension.dib</c>, which calls
/// <see cref="Formats"/>.
/// </summary>
/// <remarks>
/// A chart renders as <c>application/vnd.plotly.v1+json</c> (the figure, drawn offline by Jupyter's and VS Code's
/// plotly renderers and by lab reports), a short text/html summary and text/plain. plotly.js is never part of a
/// chart's output: reports inline it once, notebook front ends bring their own.
/// </remarks>
public static class NotebookFormatters
{
    /// <summary>One way a type renders: its MIME type and the function writing it.</summary>
    public sealed record Format(Type Type, string MimeType, Func<object, string> Write);

    /// <summary>
    /// Every formatter, most preferred MIME type first for each type (the order a front end should pick in).
    /// </summary>
    public static IReadOnlyList<Format> Formats { get; } =
    [
        new(typeof(GenericChart), MimeTypes.Plotly, o => ChartJson.ToPlotlyJson((GenericChart)o).ToJsonString()),
        new(typeof(GenericChart), MimeTypes.Html, o => ChartJson.ToHtmlSummary((GenericChart)o)),
        new(typeof(GenericChart), MimeTypes.PlainText, o => ChartJson.Describe((GenericChart)o)),
        new(typeof(LiveChain), MimeTypes.Html, o => ((LiveChain)o).ToHtml()),
        new(typeof(LiveChain), MimeTypes.PlainText, o => ((LiveChain)o).ToText()),
        new(typeof(BackingChain), MimeTypes.Html, o => ((BackingChain)o).ToHtml()),
        new(typeof(BackingChain), MimeTypes.PlainText, o => ((BackingChain)o).ToText()),
        new(typeof(Findings), MimeTypes.Html, o => FindingsTable.ToHtml((Findings)o)),
        new(typeof(Findings), MimeTypes.Findings, o => FindingsTable.ToJson((Findings)o)),
        new(typeof(Findings), MimeTypes.PlainText, o => FindingsTable.ToText((Findings)o)),
        new(typeof(ExperimentEnd), MimeTypes.Html, o => ((ExperimentEnd)o).ToHtml()),
        new(typeof(ExperimentEnd), MimeTypes.Findings, o => FindingsTable.ToJson(((ExperimentEnd)o).Findings)),
        new(typeof(ExperimentEnd), MimeTypes.PlainText, o => ((ExperimentEnd)o).ToText()),
    ];

    /// <summary>The MIME types a type renders to, preferred first; empty for types not listed here.</summary>
    public static IReadOnlyList<string> PreferredMimeTypes(Type type) =>
        Formats.Where(f => f.Type.IsAssignableFrom(type)).Select(f => f.MimeType).Distinct().ToList();

    /// <summary>
    /// The mime bundle of <paramref name="value"/> (MIME type to text; JSON types hold JSON text), or null when
    /// LabNotebooks has no formatter for its type.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? TryFormat(object? value)
    {
        if (value is null)
        {
            return null;
        }
        var bundle = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Formats.Where(f => f.Type.IsInstanceOfType(value)))
        {
            bundle.TryAdd(f.MimeType, f.Write(value));
        }
        return bundle.Count == 0 ? null : bundle;
    }
}
