using System.Reflection;
using System.Text.RegularExpressions;
using LabKernel;
using LabKernel.Experiments;

namespace LabNotebooks;

/// <summary>
/// A notebook's cells run as a console program: the <c>.csx</c> twins (dotnet-script, <c>lab run</c>) and the .NET 10
/// file-based apps (<c>dotnet run scripts/NAME.cs -- NAME=VALUE ...</c>) that <c>tools/make-notebooks</c> generates
/// import it with <c>using static LabNotebooks.ConsoleRun;</c>. What a notebook shows as an output, they print as
/// text (<see cref="display{T}"/>, <see cref="HTML"/>); an app also ends as <c>lab run</c> does (<see cref="Start"/>,
/// <see cref="Exit"/>): 0 when no claim was refuted unexpectedly, 4 when one was, 2 for a bad parameter (one line),
/// 1 when a step failed; and, like <c>lab run</c>, it writes an HTML report of what it showed (<c>NAME.html</c> in the
/// current directory; <c>--report=PATH</c>, <c>--no-report</c>). A <c>.csx</c> twin calls neither <see cref="Start"/> nor
/// <see cref="Exit"/> (<c>lab run</c> writes its report), so it writes none.
/// </summary>
public static partial class ConsoleRun
{
    /// <summary><c>lab run</c>'s exit code for a usage error (a bad parameter).</summary>
    public const int UsageError = 2;

    /// <summary><c>lab run</c>'s exit code when a step failed.</summary>
    public const int Failed = 1;

    /// <summary><c>lab run</c>'s exit code when a claim was refuted that the notebook did not declare expected.</summary>
    public const int RefutedFinding = 4;

    private static readonly object Gate = new();
    private static readonly List<Finding> Shown = [];
    private static readonly HashSet<(string, string, string)> SeenFindings = [];
    private static readonly List<Measurement> Measured = [];
    private static readonly List<IReadOnlyDictionary<string, string>> Outputs = [];
    private static ReportPlan? _report;
    private static int _started;

    /// <summary>The option that names the report's path: <c>--report=PATH</c>.</summary>
    public const string ReportOption = "--report";

    /// <summary>The option that turns the report off.</summary>
    public const string NoReportOption = "--no-report";

    /// <summary>Where an app's report goes and what its head says.</summary>
    internal sealed record ReportPlan(string Path, string Title, IReadOnlyList<string> Arguments, DateTimeOffset Started);

    /// <summary>
    /// Called first by a generated app: an exception no cell caught ends the program as <c>lab run</c> ends a run,
    /// a usage error (<see cref="LabUsageException"/>: an unknown parameter, a value that does not parse, a value a
    /// cell refuses) as one line and exit 2, anything else with its exception text and exit 1. The process exits
    /// through <see cref="Environment.Exit"/>, so the lab's exit hooks still stop the guests it started.
    /// Then reads the app's own options out of <paramref name="args"/> and returns the rest (the notebook's
    /// <c>NAME=VALUE</c> parameters, for <see cref="ScriptArgs.CheckNames"/>): <c>--report=PATH</c> writes the HTML
    /// report there, <c>--no-report</c> writes none; by default it is <c>NAME.html</c> in the current directory, as
    /// nbconvert names it. A parameter is a C# identifier, so these names never collide with one.
    /// </summary>
    /// <param name="args">The app's command line.</param>
    /// <param name="title">The notebook's title (its first markdown heading), for the report; the app's name if null.</param>
    public static string[] Start(string[] args, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            AppDomain.CurrentDomain.UnhandledException += (_, e) => Environment.Exit(Fail(e.ExceptionObject as Exception));
        }
        var (plan, rest) = PlanReport(args, title, Environment.CurrentDirectory);
        lock (Gate)
        {
            _report = plan;
        }
        return rest;
    }

    /// <summary>
    /// The report an app's command line asks for (null for <c>--no-report</c>; the last of the options wins) and the
    /// arguments left. A relative <c>--report</c> path is taken from <paramref name="directory"/>.
    /// </summary>
    internal static (ReportPlan? Plan, string[] Parameters) PlanReport(IReadOnlyList<string> args, string? title, string directory)
    {
        string? path = Path.Combine(directory, AppName + ".html");
        var rest = new List<string>();
        foreach (var arg in args)
        {
            if (arg == NoReportOption)
            {
                path = null;
            }
            else if (arg.StartsWith(ReportOption + "=", StringComparison.Ordinal))
            {
                var value = arg[(ReportOption.Length + 1)..];
                if (value.Length == 0)
                {
                    throw new LabUsageException($"{ReportOption}=: expected a path ({ReportOption}=PATH), or {NoReportOption}");
                }
                path = Path.GetFullPath(value, directory);
            }
            else if (arg == ReportOption)
            {
                throw new LabUsageException($"{ReportOption}: expected {ReportOption}=PATH, or {NoReportOption}");
            }
            else
            {
                rest.Add(arg);
            }
        }
        return (path is null ? null : new ReportPlan(path, string.IsNullOrWhiteSpace(title) ? AppName : title, rest, DateTimeOffset.UtcNow), [.. rest]);
    }

    /// <summary>Where <see cref="Exit"/> writes the report (tests; <see cref="Start"/> sets it): null for none.</summary>
    internal static void ReportTo(ReportPlan? plan)
    {
        lock (Gate)
        {
            _report = plan;
        }
    }

    /// <summary>
    /// How an app ends on an exception no cell caught: its text on stderr and its exit code (<see cref="Describe"/>).
    /// A step that failed (exit 1) still gets the report, with what was shown up to it and the failure last, as
    /// <c>lab run</c> reports a failed run; a usage error (exit 2) gets none, nothing having run.
    /// </summary>
    internal static int Fail(Exception? exception)
    {
        var (code, text) = Describe(exception);
        Console.Out.Flush();
        if (code == Failed)
        {
            WriteReport(code, text);
        }
        Console.Error.WriteLine(text);
        Console.Error.Flush();
        return code;
    }

    /// <summary>The exit code and the text an uncaught exception ends an app with.</summary>
    internal static (int Code, string Text) Describe(Exception? exception)
    {
        while (exception is AggregateException { InnerExceptions.Count: 1 } or TargetInvocationException { InnerException: not null })
        {
            exception = exception.InnerException!;
        }
        return exception is LabUsageException usage
            ? (UsageError, $"{AppName}: {OneLine(usage.Message)}")
            : (Failed, $"{AppName}: failed: {exception}");
    }

    /// <summary>
    /// The exit code of the findings shown so far (as <c>lab run</c> reads them from the outputs): 0, or 4 when a claim
    /// was refuted that the notebook did not declare expected. Prints the verdict counts on stderr. After
    /// <see cref="Start"/>, first writes the HTML report (the findings, then every output shown, in order) and prints
    /// its path; a report that cannot be written is said on stderr and does not change the exit code.
    /// </summary>
    public static int Exit()
    {
        List<Finding> shown;
        lock (Gate)
        {
            shown = [.. Shown];
        }
        var unexpected = shown.Where(f => f.IsUnexpectedRefutation).Select(f => f.Claim).Distinct().ToList();
        var code = unexpected.Count > 0 ? RefutedFinding : 0;
        Console.Out.Flush();
        WriteReport(code, null);
        Console.Error.WriteLine($"{AppName}: {FindingsText(shown)} (exit {code})");
        foreach (var claim in unexpected)
        {
            Console.Error.WriteLine($"  refuted, not declared expected: {claim}");
        }
        return code;
    }

    /// <summary>
    /// Writes the report <see cref="Start"/> asked for (none if it was not called) and prints its path on stderr; one
    /// line on stderr if it cannot be written, the exit code staying <paramref name="code"/>.
    /// </summary>
    private static void WriteReport(int code, string? failure)
    {
        List<Finding> shown;
        List<Measurement> measured;
        List<IReadOnlyDictionary<string, string>> outputs;
        ReportPlan? report;
        lock (Gate)
        {
            shown = [.. Shown];
            measured = [.. Measured];
            outputs = [.. Outputs];
            report = _report;
        }
        if (report is null)
        {
            return;
        }
        try
        {
            var run = new AppRunInfo(AppName, report.Title, report.Arguments, report.Started, DateTimeOffset.UtcNow, code) { Failure = failure };
            AppReport.Write(report.Path, AppReport.Render(run, shown, outputs, measured));
            Console.Error.WriteLine($"{AppName}: report {report.Path}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"{AppName}: could not write the report {report.Path}: {OneLine(e.Message)}");
        }
    }

    /// <summary>"12 confirmed, 1 refuted (expected), 3 info", as <c>lab run</c>'s report says it.</summary>
    internal static string FindingsText(IReadOnlyCollection<Finding> findings)
    {
        if (findings.Count == 0)
        {
            return "no findings shown";
        }
        var counts = findings.GroupBy(f => f.VerdictText).Select(g => $"{g.Count()} {g.Key}");
        return "findings: " + string.Join(", ", counts);
    }

    /// <summary>
    /// Prints a value as a notebook shows it in text (LabNotebooks' formatters: tables, chains, findings, chart
    /// summaries; anything else by <c>ToString</c>) and returns it. Findings shown count for <see cref="Exit"/>; after
    /// <see cref="Start"/>, what it shows (HTML, figures) is kept for the report.
    /// </summary>
#pragma warning disable IDE1006 // the notebook kernel's name, so cells run unchanged
    public static T display<T>(T value)
#pragma warning restore IDE1006
    {
        Remember(value switch
        {
            Findings f => f,
            ExperimentEnd end => end.Findings,
            _ => null,
        });
        var bundle = Bundle(value);
        Console.WriteLine(bundle[MimeTypes.PlainText]);
        lock (Gate)
        {
            if (_report is not null)
            {
                Outputs.Add(bundle);
            }
        }
        return value;
    }

    /// <summary>
    /// The MIME bundle a notebook would show for <paramref name="value"/>, always with text/plain: LabNotebooks'
    /// formatters (<see cref="NotebookFormatters.TryFormat"/>; tables and <see cref="HtmlView"/> by their own
    /// formatters), <see cref="HTML"/>'s HTML, or the value's <c>ToString</c>.
    /// </summary>
    internal static IReadOnlyDictionary<string, string> Bundle(object? value)
    {
        var bundle = NotebookFormatters.TryFormat(value) is { } formatted
            ? new Dictionary<string, string>(formatted, StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);
        switch (value)
        {
            case Table table:
                bundle.TryAdd(MimeTypes.Html, table.ToHtml());
                break;
            case HtmlView view:
                bundle.TryAdd(MimeTypes.Html, view.Html);
                break;
            case HtmlText html:
                bundle.TryAdd(MimeTypes.Html, html.Html);
                break;
        }
        bundle.TryAdd(MimeTypes.PlainText, value?.ToString() ?? "");
        return bundle;
    }

    /// <summary>HTML a notebook would render; printed as its text.</summary>
#pragma warning disable CA1707, IDE1006 // the notebook kernel's name
    public static HtmlText HTML(string html) => new(html);
#pragma warning restore CA1707, IDE1006

    /// <summary>The findings shown so far (each distinct claim, observation and verdict once).</summary>
    internal static IReadOnlyList<Finding> FindingsShown
    {
        get
        {
            lock (Gate)
            {
                return [.. Shown];
            }
        }
    }

    /// <summary>The measurements shown so far (each name once, in the order first shown, with its last value).</summary>
    internal static IReadOnlyList<Measurement> MeasurementsShown
    {
        get
        {
            lock (Gate)
            {
                return [.. Measured];
            }
        }
    }

    /// <summary>Forgets the findings and outputs shown and the report (tests).</summary>
    internal static void Reset()
    {
        lock (Gate)
        {
            Shown.Clear();
            SeenFindings.Clear();
            Measured.Clear();
            Outputs.Clear();
            _report = null;
        }
    }

    private static void Remember(Findings? findings)
    {
        if (findings is null)
        {
            return;
        }
        lock (Gate)
        {
            foreach (var f in findings.Rows)
            {
                if (SeenFindings.Add((f.Claim, f.Observed, f.Verdict)))
                {
                    Shown.Add(f);
                }
            }
            // Each name once, in the order first shown, with the value shown last (as Findings.Measure keeps it).
            foreach (var m in findings.Measurements)
            {
                Measurement.Keep(Measured, m);
            }
        }
    }

    private static string AppName => Assembly.GetEntryAssembly()?.GetName().Name ?? "lab";

    private static string OneLine(string text) => NewLines().Replace(text.Trim(), " ");

    [GeneratedRegex(@"\s*\r?\n\s*")]
    private static partial Regex NewLines();
}

/// <summary>HTML a notebook would render; a console program prints its text.</summary>
public sealed partial record HtmlText(string Html)
{
    public override string ToString() =>
        System.Net.WebUtility.HtmlDecode(Tags().Replace(LineEnds().Replace(Html, "\n"), "")).Trim();

    [GeneratedRegex("<(br|/p|/tr|/li|/h[1-6]|/div)[^>]*>")]
    private static partial Regex LineEnds();

    [GeneratedRegex("<[^>]+>")]
    private static partial Regex Tags();
}
