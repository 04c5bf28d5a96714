using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Tests.GuestAgent;
using LabRunner.Notebooks;
using LabRunner.Reporting;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// The runner's readers on hostile input: the real notebooks (.ipynb, .dib, .csx) truncated, byte-flipped, with lines
/// moved and JSON values retyped, and random <c>-p</c> values. Each input either reads (and then the findings
/// verdict, the parameter injection and the writer work on it) or fails with the runner's usage error; never a
/// NullReference, IndexOutOfRange, InvalidOperation or other unplanned exception.
/// </summary>
public sealed class NotebookParserFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static int Seed(int fallback) => int.TryParse(Environment.GetEnvironmentVariable("LAB_FUZZ_SEED"), out var s) ? s : fallback;

    /// <summary>A cell output as the lab's findings formatter writes it (object form and the JSON-text form hosts send).</summary>
    private const string FindingsOutput = """
        {"output_type": "display_data", "metadata": {}, "data": {
          "text/html": "<table><tr><td>the copy is whole</td></tr></table>",
          "application/vnd.labnotebooks.findings+json": {"findings": [
            {"claim": "the copy is whole", "verdict": "confirmed", "observed": "sha256 equal", "refutation_expected": false},
            {"claim": "k > 0", "verdict": "refuted", "observed": "k = 0", "refutation_expected": true},
            {"claim": "dirty", "verdict": "info", "observed": "5 MiB"}]}}}
        """;

    private static List<(string Path, string Text)> Sources()
    {
        var files = Directory.GetFiles(Path.Combine(RepoRoot, "notebooks"), "*.ipynb")
            .Concat(Directory.GetFiles(Path.Combine(RepoRoot, "notebooks", "src"), "*.dib"))
            .Concat(Directory.GetFiles(Path.Combine(RepoRoot, "scripts"), "*.csx"))
            .Concat(Directory.GetFiles(Fixtures).Where(f => f.EndsWith(".ipynb", StringComparison.Ordinal) || f.EndsWith(".dib", StringComparison.Ordinal)))
            .ToList();
        var sources = files.Select(f => (f, File.ReadAllText(f))).ToList();
        // One executed notebook with findings outputs in both forms, so the verdict reader is fuzzed too.
        var executed = (JsonObject)JsonNode.Parse(File.ReadAllText(files.First(f => f.EndsWith(".ipynb", StringComparison.Ordinal))))!;
        var code = executed["cells"]!.AsArray().OfType<JsonObject>().First(c => c["cell_type"]?.GetValue<string>() == "code");
        var asText = (JsonObject)JsonNode.Parse(FindingsOutput)!;
        asText["data"]!["application/vnd.labnotebooks.findings+json"] = asText["data"]!["application/vnd.labnotebooks.findings+json"]!.ToJsonString();
        code["outputs"] = new JsonArray(JsonNode.Parse(FindingsOutput), asText);
        sources.Add(("executed-with-findings.ipynb", executed.ToJsonString()));
        return sources;
    }

    [Fact]
    public void Given_real_notebooks_truncated_flipped_and_retyped_When_read_Then_each_reads_or_fails_with_a_usage_error()
    {
        var seed = Seed(20261203);
        var rng = new Random(seed);
        var sources = Sources();
        var counts = new Dictionary<string, int>();
        var iterations = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(4))
        {
            var (path, text) = sources[rng.Next(sources.Count)];
            var input = Mutate(text, path.EndsWith(".ipynb", StringComparison.Ordinal), rng);
            string outcome;
            try
            {
                var nb = Path.GetExtension(path) switch
                {
                    ".ipynb" => NotebookReader.ParseIpynb(path, input),
                    ".dib" => NotebookReader.ParseDib(path, input),
                    _ => NotebookReader.ParseCsx(path, input),
                };
                outcome = "read";
                // What lab run does next with a notebook it read: the verdict, parameters, fresh ids, the writer.
                _ = FindingsSummary.From(nb)?.ToJson();
                if (nb.Cells.FirstOrDefault(c => c.Kind == CellKind.Code && c.HasTag(Parameters.ParametersTag)) is { } cell
                    && Parameters.Declared(cell) is { Count: > 0 } declared)
                {
                    var p = declared[rng.Next(declared.Count)];
                    try
                    {
                        Parameters.Inject(nb, [(p.Name, RandomValue(rng))]);
                    }
                    catch (LabUsageException)
                    {
                    }
                }
                NotebookRunner.Prepare(nb);
                _ = NotebookWriter.ToText(nb);
            }
            catch (LabUsageException e)
            {
                outcome = "LabUsageException";
                Assert.False(e.Message.Contains('\n', StringComparison.Ordinal), $"not one line: {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name} ({e.Message}) reading a mutation of {Path.GetFileName(path)}:\n{Abbreviate(input)}\n{e}");
                throw;
            }
            counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
            iterations++;
        }
        output.WriteLine($"seed {seed}: {iterations} inputs from {sources.Count} notebooks in {clock.Elapsed.TotalSeconds:0.0} s: "
            + string.Join(", ", counts.Select(c => $"{c.Key} {c.Value}")));
        Assert.True(iterations > 100, $"only {iterations} iterations");
        Assert.True(counts.GetValueOrDefault("read") > 0 && counts.GetValueOrDefault("LabUsageException") > 0, "the fuzz reached only one outcome");
    }

    [Fact]
    public void Given_random_parameter_values_When_injected_Then_each_is_a_usage_error_or_a_cell_that_parses_as_CSharp()
    {
        var seed = Seed(20261204);
        var rng = new Random(seed);
        var notebooks = Directory.GetFiles(Path.Combine(RepoRoot, "notebooks", "src"), "*.dib").Select(f => NotebookReader.ParseDib(f, File.ReadAllText(f))).ToList();
        Assert.NotEmpty(notebooks);
        int iterations = 0, accepted = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            var nb = notebooks[rng.Next(notebooks.Count)];
            var declared = Parameters.Declared(nb.Cells.First(c => c.HasTag(Parameters.ParametersTag)));
            var values = Enumerable.Range(0, rng.Next(1, 4))
                .Select(_ => (rng.Next(10) == 0 ? RandomValue(rng) : declared[rng.Next(declared.Count)].Name, RandomValue(rng)))
                .ToList();
            try
            {
                Parameters.Inject(nb, values);
                var injected = nb.Cells.Single(c => c.HasTag(Parameters.InjectedTag));
                var errors = CSharpSyntaxTree.ParseText(injected.Source, new CSharpParseOptions(LanguageVersion.Preview, kind: SourceCodeKind.Script))
                    .GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
                Assert.True(errors.Count == 0, $"-p {string.Join(" ", values)} injected code that does not parse: {errors.FirstOrDefault()}\n{injected.Source}");
                // A TimeSpan given in seconds must be a number that fits one, or the cell fails inside the kernel.
                foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(injected.Source, @"TimeSpan\.FromSeconds\(([^)]*)\)"))
                {
                    Assert.True(double.TryParse(m.Groups[1].Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s)
                        && Math.Abs(s) < TimeSpan.MaxValue.TotalSeconds, $"-p {string.Join(" ", values)} injected {m.Value}");
                }
                accepted++;
            }
            catch (LabUsageException e)
            {
                Assert.DoesNotContain('\n', e.Message);
            }
            iterations++;
        }
        output.WriteLine($"seed {seed}: {iterations} -p sets in {clock.Elapsed.TotalSeconds:0.0} s, {accepted} accepted");
        Assert.True(iterations > 100 && accepted > 0, $"{iterations} iterations, {accepted} accepted");
    }

    [Fact]
    public async Task Given_random_p_options_on_the_command_line_When_lab_run_parses_them_Then_it_exits_2_with_a_usage_error()
    {
        var seed = Seed(20261205);
        var rng = new Random(seed);
        using var scratch = TempDir("p-fuzz");
        var missing = Path.Combine(scratch.Path, "missing.dib"); // never read: every run stops at a usage error
        string[] tokens = ["-p", "-p", "-p", "Points", "1000", "name", "\"q\"", "'", "$(x)", "a b", "", "--", "-x", "--timeout", "--cell-timeout", "-5", "abc", "=", "-p=1", "[1,", "null"];
        var iterations = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(1))
        {
            var args = new[] { "run", missing }.Concat(Enumerable.Range(0, rng.Next(1, 8)).Select(_ => rng.Next(4) == 0 ? RandomValue(rng) : tokens[rng.Next(tokens.Length)]))
                .Where(a => a is not ("-h" or "--help" or "-?" or "/?" or "/h")).ToArray();
            var exit = await Lab(args);
            Assert.True(exit == 2, $"lab {string.Join(" ", args.Select(a => $"[{a}]"))} exited {exit}");
            iterations++;
        }
        output.WriteLine($"seed {seed}: {iterations} command lines in {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private static string RandomValue(Random rng) => rng.Next(3) switch
    {
        0 => new[] { "NaN", "Infinity", "-Infinity", "1e300", "-1e400", "1e-400", "0x10", "9223372036854775808", "-0", "1,5", "true", "yes", "null", "[]", "{}", "[1, 2", "\"s\"", "00:00:05", "10675199.02:48:05.4775808", "\u0000", "a\nb" }[rng.Next(21)],
        1 => rng.Next(-1000, 100000).ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => new string(Enumerable.Range(0, rng.Next(0, 12)).Select(_ => (char)rng.Next(1, 0x250)).ToArray()),
    };

    /// <summary>Truncated, bytes flipped (read back as UTF-8, as File.ReadAllText would), lines dropped, repeated or moved, or for JSON a value retyped.</summary>
    private static string Mutate(string text, bool json, Random rng)
    {
        switch (rng.Next(json ? 5 : 4))
        {
            case 0:
                return text[..rng.Next(text.Length)];
            case 1:
                var bytes = Encoding.UTF8.GetBytes(text);
                for (var i = 0; i < 1 + rng.Next(6); i++)
                {
                    bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
                }
                return Encoding.UTF8.GetString(bytes);
            case 2 or 3:
                var lines = text.Split('\n').ToList();
                for (var i = 0; i < 1 + rng.Next(4); i++)
                {
                    var at = rng.Next(lines.Count);
                    switch (rng.Next(4))
                    {
                        case 0: lines.RemoveAt(at); break;
                        case 1: lines.Insert(rng.Next(lines.Count), lines[at]); break;
                        case 2: lines.Insert(at, new[] { "#!meta", "#!csharp", "#!markdown", "#!", "// parameters", "{", "#!value --name x", "#!fsharp" }[rng.Next(8)]); break;
                        default: (lines[at], lines[rng.Next(lines.Count)]) = (lines[rng.Next(lines.Count)], lines[at]); break;
                    }
                    if (lines.Count == 0)
                    {
                        break;
                    }
                }
                return string.Join('\n', lines);
            default:
                var once = GuestAgentFuzzTests.Retype(text.ReplaceLineEndings(""), rng);
                return rng.Next(2) == 0 ? once : GuestAgentFuzzTests.Retype(once, rng);
        }
    }

    private static string Abbreviate(string s) => s.Length <= 2000 ? s : s[..2000] + $"… ({s.Length} chars)";
}
