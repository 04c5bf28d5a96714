using System.Globalization;
using System.Net;
using System.Text;
using LabKernel.Journal;

namespace LabNotebooks;

/// <summary>The journal of every command the lab issued, as an HTML table for notebooks and reports.</summary>
public static class JournalHtml
{
    /// <summary>An HTML table (class <c>lab-journal</c>), oldest first, failed rows tinted, commands in monospace.</summary>
    public static string ToHtml(this IEnumerable<JournalEntry> entries, int maxWidth = 400)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var sb = new StringBuilder();
        sb.Append("<table class=\"lab-journal\" style=\"border-collapse:collapse;font-size:90%\">")
          .Append("<thead><tr><th>#</th><th>started (UTC)</th><th>duration</th><th>channel</th><th>command</th><th>reply</th></tr></thead><tbody>");
        foreach (var e in entries)
        {
            sb.Append(e.Succeeded ? "<tr>" : "<tr style=\"background:#fde8e8\">")
              .Append("<td>").Append(e.Sequence.ToString(CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td>").Append(e.Started.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td style=\"text-align:right\">").Append(WebUtility.HtmlEncode(JournalRendering.FormatDuration(e.Duration))).Append("</td>")
              .Append("<td>").Append(WebUtility.HtmlEncode(e.Channel)).Append("</td>")
              .Append("<td><code>").Append(WebUtility.HtmlEncode(JournalRendering.Shorten(e.Command, maxWidth))).Append("</code></td>")
              .Append("<td><code>").Append(WebUtility.HtmlEncode(JournalRendering.Shorten(e.Reply, maxWidth))).Append("</code></td></tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }
}
