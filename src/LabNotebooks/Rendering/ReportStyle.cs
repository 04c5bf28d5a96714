namespace LabNotebooks;

/// <summary>
/// The styling of the lab's HTML reports: <c>lab run</c>'s (LabRunner's <c>HtmlReport</c>, and <c>lab sweep</c>'s
/// summary page) and a file-based app's (<see cref="ConsoleRun"/>), so a report looks the same whichever wrote it.
/// </summary>
public static class ReportStyle
{
    /// <summary>The CSS, inlined in each report's &lt;style&gt;: no external stylesheet.</summary>
    public const string Css = """
        body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #1b1f23; line-height: 1.5; }
        header { border-bottom: 1px solid #d0d7de; margin-bottom: 1em; padding-bottom: .5em; }
        h1.title { margin: .2em 0; }
        table { border-collapse: collapse; margin: .5em 0; }
        th, td { border: 1px solid #d0d7de; padding: .25em .6em; vertical-align: top; }
        thead th { background: #f6f8fa; }
        table.run-meta th { text-align: left; background: #f6f8fa; font-weight: 600; }
        .toggle { display: inline-block; margin-top: .5em; cursor: pointer; user-select: none; }
        .cell { margin: 1em 0; }
        .cell.code { border-left: 3px solid #d0d7de; padding-left: .8em; }
        .cell.status-error, .cell.status-timeout { border-left-color: #cf222e; }
        .cell.status-skipped, .cell.status-not-run { border-left-color: #bbb; }
        .cell-head { font-size: .85em; color: #57606a; }
        .prompt { font-family: monospace; }
        .badge { border-radius: 3px; padding: 0 .4em; color: #fff; background: #57606a; }
        .badge.ok { background: #1a7f37; } .badge.error, .badge.timeout { background: #cf222e; }
        .badge.skipped, .badge.not-run { background: #8c959f; }
        .tag { border: 1px solid #57606a; border-radius: 3px; padding: 0 .3em; }
        pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: .3em 0; }
        pre.input { background: #eef2f6; }
        body.hide-code pre.input { display: none; }
        .output.stream.stderr { background: #fff5f5; }
        .output.error { background: #ffebe9; border: 1px solid #cf222e; padding: .4em .6em; margin: .3em 0; }
        .output.error .ename { font-weight: 600; color: #a40e26; }
        .output.error pre { background: transparent; }
        .error-banner { background: #ffebe9; border: 2px solid #cf222e; padding: .3em 1em; border-radius: 4px; }
        .error-banner blockquote { margin: 0; border: none; padding: 0; }
        blockquote { border-left: 3px solid #d0d7de; margin-left: 0; padding-left: 1em; color: #57606a; }
        code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
        .plot { width: 100%; min-height: 420px; }
        section.findings h2 { margin: .6em 0 .2em; font-size: 1.2em; }
        table.findings td.verdict { white-space: nowrap; font-weight: 600; }
        tr.verdict-confirmed td.verdict { color: #1a7f37; }
        tr.verdict-unexpected { background: #ffebe9; } tr.verdict-unexpected td.verdict { color: #cf222e; }
        tr.verdict-refuted-expected td.verdict, tr.verdict-info td.verdict { color: #57606a; }
        .error-anchor { border-left: 3px solid #cf222e; padding-left: .8em; }

        """;
}
