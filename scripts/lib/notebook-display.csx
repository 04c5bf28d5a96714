// display() and HTML() for the .csx twins of the notebooks: what a notebook shows as an output, a script prints
// to the terminal. tools/make-notebooks #loads this into every twin, so they run under dotnet-script as under lab run.
using System.Text.RegularExpressions;

/// <summary>HTML a notebook would render; a script prints its text.</summary>
public sealed record HtmlText(string Html)
{
    public override string ToString() =>
        System.Net.WebUtility.HtmlDecode(Regex.Replace(Regex.Replace(Html, "<(br|/p|/tr|/li|/h[1-6]|/div)[^>]*>", "\n"), "<[^>]+>", "")).Trim();
}

public static HtmlText HTML(string html) => new(html);

public static T display<T>(T value)
{
    // The lab's values print as a notebook shows them in text (tables, chains, findings, chart summaries).
    var text = LabNotebooks.NotebookFormatters.TryFormat(value) is { } bundle && bundle.TryGetValue("text/plain", out var plain) ? plain : value?.ToString();
    Console.WriteLine(text);
    return value;
}
