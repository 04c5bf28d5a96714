namespace LabNotebooks;

/// <summary>
/// Names the class that creates the display formatters of the type it decorates.
/// </summary>
/// <remarks>
/// Polyglot Notebooks (Microsoft.DotNet.Interactive.Formatting) looks for an attribute whose type is named
/// <c>TypeFormatterSourceAttribute</c>, whatever its namespace, reads its <c>FormatterSourceType</c> property,
/// creates that type with its parameterless constructor and calls its public <c>CreateTypeFormatters()</c>. Each
/// object it returns must have a public <c>string MimeType</c>, optionally a public <c>Type Type</c>, and a public
/// <c>bool Format(object instance, TextWriter writer)</c>. Declaring the attribute here lets LabNotebooks' tables render
/// in VS Code without a dependency on the notebook kernel's packages; <c>lab run</c> discovers
/// formatters by the same convention.
/// </remarks>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, AllowMultiple = true, Inherited = true)]
internal sealed class TypeFormatterSourceAttribute : Attribute
{
    public TypeFormatterSourceAttribute(Type formatterSourceType)
    {
        FormatterSourceType = formatterSourceType;
    }

    public Type FormatterSourceType { get; }

    /// <summary>MIME types a front end should show first (read by newer Polyglot versions).</summary>
    public string[] PreferredMimeTypes { get; set; } = [];
}
