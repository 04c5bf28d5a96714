using LabKernel.Plots;

namespace LabKernel.Reports;

/// <summary>The formatters of LabKernel's displayable types, found by convention (see <see cref="TypeFormatterSourceAttribute"/>).</summary>
internal sealed class LabFormatterSource
{
    public IEnumerable<object> CreateTypeFormatters()
    {
        yield return new ConventionFormatter(typeof(Table), MimeTypes.PlainText, (o, w) => w.Write(((Table)o).ToText()));
        yield return new ConventionFormatter(typeof(Table), MimeTypes.Html, (o, w) => w.Write(((Table)o).ToHtml()));
        yield return new ConventionFormatter(typeof(Figure), MimeTypes.PlainText, (o, w) => w.Write(((Figure)o).ToString()));
        yield return new ConventionFormatter(typeof(Figure), MimeTypes.Html, (o, w) => w.Write(((Figure)o).ToHtml()));
        yield return new ConventionFormatter(typeof(Figure), MimeTypes.Plotly, (o, w) => w.Write(((Figure)o).ToPlotlyJson().ToJsonString()));
    }
}

/// <summary>One formatter in the shape Polyglot Notebooks expects: MimeType, Type and Format(object, TextWriter).</summary>
internal sealed class ConventionFormatter(Type type, string mimeType, Action<object, TextWriter> write)
{
    public string MimeType { get; } = mimeType;

    public Type Type { get; } = type;

    public bool Format(object instance, TextWriter writer)
    {
        if (!Type.IsInstanceOfType(instance))
        {
            return false;
        }
        write(instance, writer);
        return true;
    }
}

/// <summary>The MIME types LabKernel's objects render to.</summary>
public static class MimeTypes
{
    public const string PlainText = "text/plain";
    public const string Html = "text/html";
    public const string Markdown = "text/markdown";
    public const string Json = "application/json";

    /// <summary>A plotly figure as a JSON object (<c>data</c>, <c>layout</c>), drawn by Jupyter front ends and lab reports.</summary>
    public const string Plotly = "application/vnd.plotly.v1+json";
}
