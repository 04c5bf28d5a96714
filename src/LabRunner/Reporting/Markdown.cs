using Markdig;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace LabRunner.Reporting;

/// <summary>
/// Notebook markdown to HTML for reports, by Markdig (CommonMark, with pipe tables, auto-links, the emphasis
/// extras and GitHub's heading ids). A report must never run a notebook's script: raw HTML in the markdown is escaped, and a link or image
/// whose address has a scheme other than http, https or mailto (<c>javascript:</c>, <c>data:</c>...) points nowhere.
/// </summary>
public static class Markdown
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .UsePipeTables()
        .UseEmphasisExtras()
        .UseAutoLinks()
        // Headings get GitHub's ids, so a notebook's own links to its headings work in the report too (the error
        // banner's link to the heading before the failing cell among them).
        .UseAutoIdentifiers(Markdig.Extensions.AutoIdentifiers.AutoIdentifierOptions.GitHub)
        .DisableHtml()
        .Build();

    public static string ToHtml(string markdown)
    {
        var document = Markdig.Markdown.Parse(markdown, Pipeline);
        foreach (var link in document.Descendants<LinkInline>())
        {
            if (link.Url is { } url && !IsSafe(url))
            {
                link.Url = "#";
            }
        }
        foreach (var link in document.Descendants<AutolinkInline>())
        {
            if (!IsSafe(link.Url))
            {
                link.Url = "#";
            }
        }
        return Markdig.Markdown.ToHtml(document, Pipeline);
    }

    private static bool IsSafe(string url)
    {
        var colon = url.IndexOf(':', StringComparison.Ordinal);
        var slash = url.IndexOfAny(['/', '?', '#']);
        if (colon < 0 || (slash >= 0 && slash < colon))
        {
            return true; // relative: no scheme
        }
        var scheme = url[..colon].Trim().ToLowerInvariant();
        return scheme is "http" or "https" or "mailto";
    }
}
