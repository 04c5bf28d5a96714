namespace LabNotebooks;

/// <summary>
/// The formatters of LabNotebooks' own displayable types, found by the <see cref="TypeFormatterSourceAttribute"/>
/// convention by Polyglot Notebooks and by <c>lab run</c>.
/// </summary>
internal sealed class LabFormatterSource
{
    public IEnumerable<object> CreateTypeFormatters()
    {
        yield return new ConventionFormatter(typeof(Table), MimeTypes.PlainText, (o, w) => w.Write(((Table)o).ToText()));
        yield return new ConventionFormatter(typeof(Table), MimeTypes.Html, (o, w) => w.Write(((Table)o).ToHtml()));
        yield return new ConventionFormatter(typeof(HtmlView), MimeTypes.PlainText, (o, w) => w.Write(((HtmlView)o).Text));
        yield return new ConventionFormatter(typeof(HtmlView), MimeTypes.Html, (o, w) => w.Write(((HtmlView)o).Html));
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
