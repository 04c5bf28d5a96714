namespace LabRunner.Notebooks.Scripting;

/// <summary>
/// What notebook code and scripts see as globals under <c>lab run</c>: <c>Args</c> (dotnet-script), and
/// <c>display(x)</c> and <c>HTML(s)</c> as in Polyglot Notebooks.
/// </summary>
public sealed class NotebookGlobals
{
    internal NotebookGlobals(IReadOnlyList<string> args)
    {
        Args = args.ToList();
    }

    /// <summary>The arguments after <c>--</c> on the <c>lab run</c> command line.</summary>
    public IList<string> Args { get; }

    /// <summary>Shows <paramref name="value"/> as an output of the running cell, in the given MIME types or its default ones.</summary>
#pragma warning disable IDE1006 // lower case, as in Polyglot Notebooks
    public DisplayedValue display(object? value, params string[] mimeTypes) => KernelOutput.Current.Display(value, mimeTypes);
#pragma warning restore IDE1006

    /// <summary>Marks a string as HTML to display as is.</summary>
    public HtmlString HTML(string html) => new(html);
}

/// <summary>An output shown with <c>display</c>; <see cref="Update"/> replaces it in place.</summary>
public sealed class DisplayedValue
{
    internal DisplayedValue(string displayId, string[] mimeTypes)
    {
        DisplayId = displayId;
        MimeTypes = mimeTypes;
    }

    public string DisplayId { get; }

    internal string[] MimeTypes { get; }

    public void Update(object? value) => KernelOutput.Current.Update(this, value);
}

/// <summary>HTML to show as is (<c>HTML("&lt;b&gt;hi&lt;/b&gt;")</c>).</summary>
public sealed record HtmlString(string Html)
{
    public override string ToString() => Html;
}

/// <summary><c>x.Display()</c>, as in Polyglot Notebooks.</summary>
public static class DisplayExtensions
{
    public static DisplayedValue Display(this object? value, params string[] mimeTypes) => KernelOutput.Current.Display(value, mimeTypes);
}
