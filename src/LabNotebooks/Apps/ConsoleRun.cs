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
/// 1 when a step failed.
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
    private static int _started;

    /// <summary>
    /// Called first by a generated app: an exception no cell caught ends the program as <c>lab run</c> ends a run,
    /// a usage error (<see cref="LabUsageException"/>: an unknown parameter, a value that does not parse, a value a
    /// cell refuses) as one line and exit 2, anything else with its exception text and exit 1. The process exits
    /// through <see cref="Environment.Exit"/>, so the lab's exit hooks still stop the guests it started.
    /// </summary>
    public static void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1)
        {
            return;
        }
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            var (code, text) = Describe(e.ExceptionObject as Exception);
            Console.Out.Flush();
            Console.Error.WriteLine(text);
            Console.Error.Flush();
            Environment.Exit(code);
        };
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
    /// was refuted that the notebook did not declare expected. Prints the verdict counts on stderr.
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
        Console.Error.WriteLine($"{AppName}: {FindingsText(shown)} (exit {code})");
        foreach (var claim in unexpected)
        {
            Console.Error.WriteLine($"  refuted, not declared expected: {claim}");
        }
        return code;
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
    /// summaries; anything else by <c>ToString</c>) and returns it. Findings shown count for <see cref="Exit"/>.
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
        var text = NotebookFormatters.TryFormat(value) is { } bundle && bundle.TryGetValue(MimeTypes.PlainText, out var plain) ? plain : value?.ToString();
        Console.WriteLine(text);
        return value;
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

    /// <summary>Forgets the findings shown (tests).</summary>
    internal static void Reset()
    {
        lock (Gate)
        {
            Shown.Clear();
            SeenFindings.Clear();
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
