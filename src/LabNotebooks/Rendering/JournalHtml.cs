using System.Globalization;
using System.Net;
using System.Text;
using LabKernel.Journal;

namespace LabNotebooks;

/// <summary>The journal of every command the lab issued, as HTML tables for notebooks and reports.</summary>
public static class JournalHtml
{
    /// <summary>
    /// The journal folded (<see cref="JournalFolding.Fold"/>): each wait's repeated polls one row with their count,
    /// time span and outcome; a failure tinted red, an expected "not yet" answer during a wait shown as waiting (amber),
    /// not as a failure. Below it, collapsed, every raw entry (<see cref="ToRawHtml"/>).
    /// </summary>
    public static string ToHtml(this IEnumerable<JournalEntry> entries, int maxWidth = 400)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var all = entries as IReadOnlyList<JournalEntry> ?? entries.ToList();
        var rows = all.Fold();
        var sb = new StringBuilder();
        sb.Append("<table class=\"lab-journal\" style=\"border-collapse:collapse;font-size:90%\">")
          .Append("<thead><tr><th>#</th><th>started (UTC)</th><th>duration</th><th>count</th><th>channel</th><th>command</th><th>outcome</th><th>reply</th></tr></thead><tbody>");
        foreach (var r in rows)
        {
            var style = r.Outcome switch
            {
                JournalOutcome.Failed => " class=\"failed\" style=\"background:#fde8e8\"",
                JournalOutcome.Waiting => " class=\"waiting\" style=\"background:#fff8e1\"",
                _ => "",
            };
            var sequence = r.Count == 1
                ? r.FirstSequence.ToString(CultureInfo.InvariantCulture)
                : string.Create(CultureInfo.InvariantCulture, $"{r.FirstSequence}–{r.LastSequence}");
            sb.Append("<tr").Append(style).Append('>')
              .Append("<td>").Append(sequence).Append("</td>")
              .Append("<td>").Append(r.Started.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td style=\"text-align:right\">").Append(E(JournalRendering.FormatDuration(r.Span))).Append("</td>")
              .Append("<td style=\"text-align:right\">").Append(r.Count.ToString(CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td>").Append(E(r.Channel)).Append("</td>")
              .Append("<td><code>").Append(E(JournalRendering.Shorten(r.Command, maxWidth))).Append("</code>")
              .Append(r.Count > 1 && r.Wait is { } wait ? $"<br><small>polled while waiting for {E(JournalRendering.Shorten(wait, maxWidth))}</small>" : "")
              .Append("</td>")
              .Append("<td>").Append(E(r.OutcomeText)).Append("</td>")
              .Append("<td><code>").Append(E(JournalRendering.Shorten(r.Reply, maxWidth))).Append("</code></td></tr>");
        }
        sb.Append("</tbody></table>");
        if (rows.Count < all.Count)
        {
            sb.Append("<details class=\"lab-journal-raw\"><summary>every entry (")
              .Append(all.Count.ToString(CultureInfo.InvariantCulture)).Append(", unfolded)</summary>")
              .Append(ToRawHtml(all, maxWidth)).Append("</details>");
        }
        return sb.ToString();
    }

    /// <summary>Every entry, one row each, oldest first: failures tinted red, "not yet" answers during a wait amber.</summary>
    public static string ToRawHtml(this IEnumerable<JournalEntry> entries, int maxWidth = 400)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var sb = new StringBuilder();
        sb.Append("<table class=\"lab-journal raw\" style=\"border-collapse:collapse;font-size:90%\">")
          .Append("<thead><tr><th>#</th><th>started (UTC)</th><th>duration</th><th>channel</th><th>command</th><th>reply</th></tr></thead><tbody>");
        foreach (var e in entries)
        {
            sb.Append(e.Succeeded ? "<tr>" : e.NotYet ? "<tr class=\"waiting\" style=\"background:#fff8e1\">" : "<tr class=\"failed\" style=\"background:#fde8e8\">")
              .Append("<td>").Append(e.Sequence.ToString(CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td>").Append(e.Started.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append("</td>")
              .Append("<td style=\"text-align:right\">").Append(E(JournalRendering.FormatDuration(e.Duration))).Append("</td>")
              .Append("<td>").Append(E(e.Channel)).Append("</td>")
              .Append("<td><code>").Append(E(JournalRendering.Shorten(e.Command, maxWidth))).Append("</code></td>")
              .Append("<td><code>").Append(E(JournalRendering.Shorten(e.Reply, maxWidth))).Append("</code></td></tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
