using System.Globalization;
using System.Net;
using System.Text;

namespace LabKernel.Journal;

/// <summary>Renders journal entries as a plain-text table, oldest first (LabNotebooks renders them as HTML).</summary>
public static class JournalRendering
{
    /// <summary>
    /// One line per entry: sequence, start time (UTC, ms), duration, channel, ok/FAIL (wait: a "not yet" answer during
    /// a wait, <see cref="JournalEntry.NotYet"/>), the command as issued and
    /// the reply (both shortened to <paramref name="maxWidth"/> characters; 0 for no limit).
    /// </summary>
    public static string ToText(this IEnumerable<JournalEntry> entries, int maxWidth = 160)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var sb = new StringBuilder();
        sb.AppendLine("  #  started (UTC)   duration  channel  ok    command → reply");
        foreach (var e in entries)
        {
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"{e.Sequence,3}  {e.Started.UtcDateTime:HH:mm:ss.fff}  {FormatDuration(e.Duration),9}  {e.Channel,-7}  {(e.Succeeded ? "ok  " : e.NotYet ? "wait" : "FAIL")}  "));
            sb.Append(Shorten(e.Command, maxWidth)).Append(" → ").AppendLine(Shorten(e.Reply, maxWidth));
        }
        return sb.ToString();
    }

    /// <summary>Entries of one channel (qmp, process, block, agent, ...).</summary>
    public static IEnumerable<JournalEntry> OfChannel(this IEnumerable<JournalEntry> entries, string channel) =>
        entries.Where(e => e.Channel == channel);

    internal static string FormatDuration(TimeSpan d) =>
        d.TotalSeconds >= 1
            ? d.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s"
            : d.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture) + " ms";

    internal static string Shorten(string s, int max)
    {
        s = s.ReplaceLineEndings(" ");
        return max <= 0 || s.Length <= max ? s : s[..(max - 1)] + "…";
    }
}
