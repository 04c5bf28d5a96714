using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace LabRunner.Reporting;

/// <summary>
/// A small markdown renderer for notebook text: headings, paragraphs, bullet and numbered lists (nested by
/// indentation), fenced and indented code, block quotes, rules, pipe tables, and inline code, bold, italic,
/// links and images. Raw HTML in the markdown is escaped, never passed through.
/// </summary>
public static partial class Markdown
{
    public static string ToHtml(string markdown)
    {
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        var sb = new StringBuilder();
        RenderBlocks(lines, 0, lines.Length, sb);
        return sb.ToString();
    }

    private static void RenderBlocks(string[] lines, int start, int end, StringBuilder sb)
    {
        var i = start;
        while (i < end)
        {
            var line = lines[i];
            var trimmed = line.Trim();
            if (trimmed.Length == 0)
            {
                i++;
                continue;
            }
            if (trimmed.StartsWith("```", StringComparison.Ordinal) || trimmed.StartsWith("~~~", StringComparison.Ordinal))
            {
                var fence = trimmed[..3];
                var lang = trimmed[3..].Trim();
                var code = new List<string>();
                i++;
                while (i < end && !lines[i].Trim().StartsWith(fence, StringComparison.Ordinal))
                {
                    code.Add(lines[i]);
                    i++;
                }
                i++;
                sb.Append("<pre><code").Append(lang.Length > 0 ? $" class=\"language-{Escape(lang)}\"" : "").Append('>')
                  .Append(Escape(string.Join('\n', code))).Append("</code></pre>\n");
                continue;
            }
            if (Heading().Match(line) is { Success: true } h)
            {
                var level = h.Groups[1].Length;
                sb.Append($"<h{level}>").Append(Inline(h.Groups[2].Value.TrimEnd('#').Trim())).Append($"</h{level}>\n");
                i++;
                continue;
            }
            if (Rule().IsMatch(line))
            {
                sb.Append("<hr>\n");
                i++;
                continue;
            }
            if (trimmed.StartsWith('>'))
            {
                var quoted = new List<string>();
                while (i < end && lines[i].Trim().StartsWith('>'))
                {
                    var q = lines[i].TrimStart()[1..];
                    quoted.Add(q.StartsWith(' ') ? q[1..] : q);
                    i++;
                }
                sb.Append("<blockquote>\n");
                RenderBlocks([.. quoted], 0, quoted.Count, sb);
                sb.Append("</blockquote>\n");
                continue;
            }
            if (trimmed.StartsWith('|') && i + 1 < end && TableSeparator().IsMatch(lines[i + 1].Trim()))
            {
                i = RenderTable(lines, i, end, sb);
                continue;
            }
            if (ListItem().IsMatch(line))
            {
                i = RenderList(lines, i, end, sb);
                continue;
            }
            if (line.StartsWith("    ", StringComparison.Ordinal) || line.StartsWith('\t'))
            {
                var code = new List<string>();
                while (i < end && (lines[i].StartsWith("    ", StringComparison.Ordinal) || lines[i].StartsWith('\t') || lines[i].Trim().Length == 0))
                {
                    code.Add(lines[i].StartsWith('\t') ? lines[i][1..] : lines[i].Length >= 4 ? lines[i][4..] : "");
                    i++;
                }
                sb.Append("<pre><code>").Append(Escape(string.Join('\n', code).TrimEnd('\n'))).Append("</code></pre>\n");
                continue;
            }
            var para = new List<string>();
            while (i < end && lines[i].Trim().Length > 0 && !StartsBlock(lines, i, end))
            {
                para.Add(lines[i].Trim());
                i++;
            }
            if (para.Count == 0)
            {
                para.Add(lines[i].Trim());
                i++;
            }
            sb.Append("<p>").Append(Inline(string.Join('\n', para))).Append("</p>\n");
        }
    }

    private static bool StartsBlock(string[] lines, int i, int end)
    {
        var t = lines[i].Trim();
        return Heading().IsMatch(lines[i]) || t.StartsWith("```", StringComparison.Ordinal) || t.StartsWith('>') || ListItem().IsMatch(lines[i])
            || Rule().IsMatch(lines[i]) || (t.StartsWith('|') && i + 1 < end && TableSeparator().IsMatch(lines[i + 1].Trim()));
    }

    private static int RenderList(string[] lines, int i, int end, StringBuilder sb)
    {
        var first = ListItem().Match(lines[i]);
        var indent = first.Groups["indent"].Length;
        var ordered = char.IsDigit(first.Groups["marker"].Value[0]);
        sb.Append(ordered ? "<ol>\n" : "<ul>\n");
        while (i < end)
        {
            var m = ListItem().Match(lines[i]);
            if (!m.Success || m.Groups["indent"].Length != indent)
            {
                break;
            }
            var body = new List<string> { m.Groups["text"].Value };
            i++;
            // Continuation lines and nested lists belong to this item while they are indented more than its marker.
            var nestedStart = -1;
            while (i < end)
            {
                var l = lines[i];
                if (l.Trim().Length == 0)
                {
                    if (i + 1 < end && Indent(lines[i + 1]) > indent && lines[i + 1].Trim().Length > 0)
                    {
                        i++;
                        continue;
                    }
                    break;
                }
                var nm = ListItem().Match(l);
                if (nm.Success && nm.Groups["indent"].Length <= indent)
                {
                    break;
                }
                if (!nm.Success && Indent(l) <= indent && nestedStart < 0)
                {
                    // A lazy continuation line of the item's paragraph.
                    if (StartsBlock(lines, i, end))
                    {
                        break;
                    }
                    body.Add(l.Trim());
                    i++;
                    continue;
                }
                if (nm.Success && nestedStart < 0)
                {
                    nestedStart = i;
                }
                if (nestedStart < 0)
                {
                    body.Add(l.Trim());
                }
                i++;
            }
            sb.Append("<li>").Append(Inline(string.Join('\n', body)));
            if (nestedStart >= 0)
            {
                sb.Append('\n');
                var nested = lines[nestedStart..i];
                var minIndent = nested.Where(x => x.Trim().Length > 0).Min(Indent);
                var dedented = nested.Select(x => x.Length >= minIndent ? x[minIndent..] : x.TrimStart()).ToArray();
                RenderBlocks(dedented, 0, dedented.Length, sb);
            }
            sb.Append("</li>\n");
        }
        sb.Append(ordered ? "</ol>\n" : "</ul>\n");
        return i;
    }

    private static int RenderTable(string[] lines, int i, int end, StringBuilder sb)
    {
        var header = Cells(lines[i]);
        var aligns = Cells(lines[i + 1]).Select(c => c.StartsWith(':') && c.EndsWith(':') ? "center" : c.EndsWith(':') ? "right" : c.StartsWith(':') ? "left" : null).ToList();
        string Align(int c) => c < aligns.Count && aligns[c] is { } a ? $" style=\"text-align:{a}\"" : "";
        sb.Append("<table>\n<thead><tr>");
        for (var c = 0; c < header.Count; c++)
        {
            sb.Append("<th").Append(Align(c)).Append('>').Append(Inline(header[c])).Append("</th>");
        }
        sb.Append("</tr></thead>\n<tbody>\n");
        i += 2;
        while (i < end && lines[i].Trim().StartsWith('|'))
        {
            var row = Cells(lines[i]);
            sb.Append("<tr>");
            for (var c = 0; c < header.Count; c++)
            {
                sb.Append("<td").Append(Align(c)).Append('>').Append(c < row.Count ? Inline(row[c]) : "").Append("</td>");
            }
            sb.Append("</tr>\n");
            i++;
        }
        sb.Append("</tbody>\n</table>\n");
        return i;
    }

    private static List<string> Cells(string line)
    {
        var t = line.Trim();
        if (t.StartsWith('|'))
        {
            t = t[1..];
        }
        if (t.EndsWith('|') && !t.EndsWith("\\|", StringComparison.Ordinal))
        {
            t = t[..^1];
        }
        return [.. PipeSplit().Split(t).Select(c => c.Trim().Replace("\\|", "|", StringComparison.Ordinal))];
    }

    private static int Indent(string line) => line.Length - line.TrimStart().Length;

    /// <summary>Inline markdown: code spans first (their content stays literal), then escaping, links, emphasis.</summary>
    public static string Inline(string text)
    {
        var sb = new StringBuilder();
        var parts = CodeSpan().Split(text);
        // Split with a capture group alternates text and code span contents.
        for (var k = 0; k < parts.Length; k++)
        {
            if (k % 2 == 1)
            {
                sb.Append("<code>").Append(Escape(parts[k].Trim())).Append("</code>");
                continue;
            }
            var s = Escape(parts[k]);
            s = Image().Replace(s, m => $"<img src=\"{SafeUrl(m.Groups[2].Value)}\" alt=\"{m.Groups[1].Value}\">");
            s = Link().Replace(s, m => $"<a href=\"{SafeUrl(m.Groups[2].Value)}\">{m.Groups[1].Value}</a>");
            s = Bold().Replace(s, "<strong>$2</strong>");
            s = Italic().Replace(s, "<em>$2</em>");
            s = s.Replace("\\*", "*", StringComparison.Ordinal).Replace("\\_", "_", StringComparison.Ordinal);
            s = s.Replace("  \n", "<br>\n", StringComparison.Ordinal);
            sb.Append(s);
        }
        return sb.ToString();
    }

    /// <summary>Links may be relative, anchors, http(s) or mailto; anything else (javascript:, data:) becomes "#".</summary>
    private static string SafeUrl(string escapedUrl)
    {
        var url = WebUtility.HtmlDecode(escapedUrl).Trim();
        var colon = url.IndexOf(':');
        var slash = url.IndexOfAny(['/', '#', '?']);
        var hasScheme = colon > 0 && (slash < 0 || colon < slash);
        if (hasScheme && !(url.StartsWith("http:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase)))
        {
            return "#";
        }
        return Escape(url);
    }

    private static string Escape(string s) => WebUtility.HtmlEncode(s);

    [GeneratedRegex(@"^ {0,3}(#{1,6})\s+(.*)$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"^ {0,3}([-*_])( *\1){2,} *$")]
    private static partial Regex Rule();

    [GeneratedRegex(@"^(?<indent> *)(?<marker>[-*+]|\d{1,9}[.)])\s+(?<text>.*)$")]
    private static partial Regex ListItem();

    [GeneratedRegex(@"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")]
    private static partial Regex TableSeparator();

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex PipeSplit();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"!\[([^\]]*)\]\(([^)\s]+)\)")]
    private static partial Regex Image();

    [GeneratedRegex(@"\[([^\]]+)\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")]
    private static partial Regex Bold();

    [GeneratedRegex(@"(?<![\w\\])(\*|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")]
    private static partial Regex Italic();
}
