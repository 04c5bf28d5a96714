using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LabKernel.Processes;
using LabKernel.Tests.Runner;

namespace LabKernel.Tests.Conformance;

/// <summary>
/// The real hosts of the C# kernel that users run notebooks in, driven headless: dotnet-repl (the repository's local
/// tool) and VS Code's host, the dotnet-interactive tool as the Jupyter kernel <c>.net-csharp</c> under Debian's
/// <c>jupyter nbconvert --execute</c>. scripts/setup installs both. A missing host fails the test with the fix.
/// </summary>
internal static partial class RealKernelHosts
{
    /// <summary>
    /// The environment of the real hosts' kernels: the JIT settings `lab run` gives its own kernel
    /// (<see cref="LabRunner.Notebooks.KernelJit"/>), so the suite spends as little CPU compiling in them. They change
    /// when code is compiled, not what it does.
    /// </summary>
    public static Dictionary<string, string?> KernelEnvironment(Dictionary<string, string?>? more = null)
    {
        var environment = LabRunner.Notebooks.KernelJit.Settings(Environment.GetEnvironmentVariable).ToDictionary(s => s.Name, s => (string?)s.Value);
        foreach (var (name, value) in more ?? [])
        {
            environment[name] = value;
        }
        return environment;
    }

    public static async Task DotnetReplAsync(string input, string output, TimeSpan timeout)
    {
        // dotnet-repl prints nothing (and may hang) without a terminal; `script` gives it one. It exits 2 when a cell
        // wrote an error, which is data here, not a failure of the host.
        var command = $"dotnet tool run dotnet-repl -- --run {Quote(input)} --exit-after-run --output-path {Quote(output)}";
        var r = await ProcessRunner.RunAsync("script", ["-qec", command, "/dev/null"],
            new ProcessOptions { Check = false, Timeout = timeout, WorkingDirectory = RunnerTestSupport.RepoRoot, Environment = KernelEnvironment() });
        Assert.True(File.Exists(output), $"dotnet-repl wrote no notebook (exit {r.ExitCode}; run scripts/setup to restore the local tools): {Tail(r.StandardOutput + r.StandardError)}");
    }

    public static async Task NbconvertAsync(string input, string output, TimeSpan timeout)
    {
        var r = await ProcessRunner.RunAsync("jupyter",
            ["nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--ExecutePreprocessor.kernel_name=.net-csharp",
             $"--ExecutePreprocessor.timeout={(int)timeout.TotalSeconds}", "--output", Path.GetFileName(output), "--output-dir", Path.GetDirectoryName(output)!, input],
            new ProcessOptions { Check = false, Timeout = timeout + TimeSpan.FromSeconds(30), WorkingDirectory = Path.GetDirectoryName(input)!, Environment = KernelEnvironment() });
        Assert.True(r.Succeeded && File.Exists(output), $"jupyter nbconvert with the .net-csharp kernel failed (exit {r.ExitCode}; scripts/setup installs it): {Tail(r.StandardError)}");
    }

    /// <summary>
    /// Every executed notebook ran to the end (no cell wrote an error), <paramref name="labRun"/> (lab run's) found
    /// something, and each of <paramref name="others"/> reached exactly its verdicts. Returns lab run's verdicts.
    /// </summary>
    public static List<(string Claim, string Verdict)> AssertSameVerdicts(string labRun, params string[] others)
    {
        foreach (var executed in others.Prepend(labRun))
        {
            Assert.True(Errors(executed) is [], $"{Path.GetFileName(executed)}: {string.Join(" | ", Errors(executed))}");
        }
        var expected = Verdicts(labRun);
        Assert.NotEmpty(expected);
        foreach (var executed in others)
        {
            Assert.True(expected.SequenceEqual(Verdicts(executed)),
                $"{Path.GetFileName(executed)} reached other verdicts than lab run:\n  lab run: {string.Join("; ", expected)}\n  {Path.GetFileName(executed)}: {string.Join("; ", Verdicts(executed))}");
        }
        return expected;
    }

    /// <summary>The error outputs of an executed notebook (name: value), in order; empty when every cell ran clean.</summary>
    public static List<string> Errors(string notebookPath) =>
        RunnerTestSupport.Cells(RunnerTestSupport.ReadJson(notebookPath))
            .SelectMany(c => (c["outputs"] as JsonArray ?? []).OfType<JsonObject>())
            .Where(o => o["output_type"]?.GetValue<string>() == "error")
            .Select(o => $"{o["ename"]?.GetValue<string>()}: {o["evalue"]?.GetValue<string>()}")
            .ToList();

    /// <summary>Every (claim, verdict) of the findings tables in a notebook's outputs, in order.</summary>
    /// <summary>The findings an experiment wrote into its artifacts.json (kept runs), as <see cref="Verdicts"/> gives them.</summary>
    public static List<(string Claim, string Verdict)> ManifestVerdicts(string manifestPath) =>
        (RunnerTestSupport.ReadJson(manifestPath)["findings"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(f => (f["Claim"]!.GetValue<string>(), (f["Hypothesis"]?.GetValue<bool>() == true ? "hypothesis" : f["Verdict"]!.GetValue<string>() + (f["RefutationExpected"]?.GetValue<bool>() == true ? " (expected)" : ""))))
            .Distinct().ToList();

    public static List<(string Claim, string Verdict)> Verdicts(string notebookPath)
    {
        // The structured findings LabNotebooks writes beside each table (a JSON object, or its text from the kernel).
        var structured = RunnerTestSupport.Cells(RunnerTestSupport.ReadJson(notebookPath))
            .SelectMany(c => (c["outputs"] as JsonArray ?? []).OfType<JsonObject>())
            .Select(o => o["data"]?["application/vnd.labnotebooks.findings+json"])
            .Select(LabRunner.Notebooks.MimeJson.AsObject)
            .SelectMany(n => (n?["findings"] as JsonArray ?? []).OfType<JsonObject>())
            .Select(f => (f["claim"]!.GetValue<string>(), (f["hypothesis"]?.GetValue<bool>() == true ? "hypothesis" : f["verdict"]!.GetValue<string>() + (f["refutation_expected"]?.GetValue<bool>() == true ? " (expected)" : ""))))
            .Distinct().ToList();
        if (structured.Count > 0)
        {
            return structured;
        }
        var result = new List<(string, string)>();
        foreach (var html in Outputs(notebookPath).Select(o => o.Html).OfType<string>())
        {
            foreach (Match row in Row().Matches(html))
            {
                var cells = Cell().Matches(row.Groups[1].Value).Select(m => WebUtility.HtmlDecode(Tag().Replace(m.Groups[1].Value, "")).Trim()).ToList();
                if (cells.Count >= 2 && cells[^1] is "confirmed" or "refuted" or "info")
                {
                    result.Add((cells.First(c => c.Length > 0 && !int.TryParse(c, out _)), cells[^1]));
                }
            }
        }
        return result.Distinct().ToList();
    }

    /// <summary>Each code cell's outputs as (kind, mime types, text), numbers and submission ids normalised.</summary>
    public static List<List<string>> NormalisedOutputs(string notebookPath)
    {
        var nb = RunnerTestSupport.ReadJson(notebookPath);
        return RunnerTestSupport.Cells(nb).Where(c => c["cell_type"]!.GetValue<string>() == "code").Select(c =>
            (c["outputs"] as JsonArray ?? []).OfType<JsonObject>()
                .Where(o => !IsJupyterBootstrap(o) && !IsAssemblyWarning(o))
                .Select(o =>
                {
                    var kind = o["output_type"]!.GetValue<string>() switch { "execute_result" or "display_data" => "value", var k => k };
                    var data = o["data"] as JsonObject;
                    var text = data is null ? RunnerTestSupport.Text(o["text"]) : string.Join(" | ", data.OrderBy(kv => kv.Key).Select(kv => kv.Key + "=" + RunnerTestSupport.Text(kv.Value)));
                    return $"{kind}: {Number().Replace(text.ReplaceLineEndings("\n").Trim(), "N")}";
                }).ToList()).ToList();
    }

    private static IEnumerable<(string? Html, string? Text)> Outputs(string notebookPath) =>
        RunnerTestSupport.Cells(RunnerTestSupport.ReadJson(notebookPath))
            .SelectMany(c => (c["outputs"] as JsonArray ?? []).OfType<JsonObject>())
            .Select(o => (o["data"]?["text/html"] is { } h ? RunnerTestSupport.Text(h) : null, o["data"]?["text/plain"] is { } t ? RunnerTestSupport.Text(t) : null));

    /// <summary>The script the Jupyter host adds to its first output so a browser page can find the kernel.</summary>
    private static bool IsJupyterBootstrap(JsonObject o) =>
        o["data"]?["text/html"] is { } h && RunnerTestSupport.Text(h).Contains("dotnet-interactive-this-cell", StringComparison.Ordinal);

    /// <summary>A CS1701 warning the tool's own assembly set prints on stderr when HTML() is first used.</summary>
    private static bool IsAssemblyWarning(JsonObject o) =>
        o["output_type"]?.GetValue<string>() == "stream" && RunnerTestSupport.Text(o["text"]).Contains("warning CS1701", StringComparison.Ordinal);

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Tail(string s) => string.Join('\n', s.Split('\n').TakeLast(15));

    [GeneratedRegex(@"<tr>(.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex Row();

    [GeneratedRegex(@"<td[^>]*>(.*?)</td>", RegexOptions.Singleline)]
    private static partial Regex Cell();

    [GeneratedRegex(@"<[^>]+>")]
    private static partial Regex Tag();

    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Number();
}
