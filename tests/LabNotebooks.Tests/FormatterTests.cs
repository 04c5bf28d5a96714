using System.Collections;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Experiments;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET.CSharp;

namespace LabNotebooks.Tests;

/// <summary>
/// How LabNotebooks' values reach the .NET Interactive kernel: tables through the TypeFormatterSource convention,
/// charts, chains and findings through the package's extension.dib, checked against the kernel's own formatting
/// library (Microsoft.DotNet.Interactive.Formatting).
/// </summary>
[Collection(nameof(KernelFormatterCollection))]
public sealed class FormatterTests
{
    [Fact]
    public void A_table_carries_an_attribute_named_TypeFormatterSourceAttribute_whose_formatters_have_the_shape_Polyglot_compiles()
    {
        var table = new[] { new { A = 1, B = "<x>" } }.ToTable("t");
        var attribute = typeof(Table).GetCustomAttributes(true).Single(a => a.GetType().Name == "TypeFormatterSourceAttribute");
        var sourceType = (Type)attribute.GetType().GetProperty("FormatterSourceType")!.GetValue(attribute)!;
        var formatters = (IEnumerable)sourceType.GetMethod("CreateTypeFormatters")!.Invoke(Activator.CreateInstance(sourceType), null)!;

        var outputs = new Dictionary<string, string>();
        foreach (var formatter in formatters.Cast<object>().Where(f => (Type)f.GetType().GetProperty("Type")!.GetValue(f)! == typeof(Table)))
        {
            var mime = (string)formatter.GetType().GetProperty("MimeType")!.GetValue(formatter)!;
            // As Polyglot does: GetMethod("Format") by name, Expression.Call with (object, TextWriter) parameters.
            var method = formatter.GetType().GetMethod("Format")!;
            var value = Expression.Parameter(typeof(object));
            var writer = Expression.Parameter(typeof(TextWriter));
            var call = Expression.Lambda<Func<object, TextWriter, bool>>(Expression.Call(Expression.Constant(formatter), method, value, writer), value, writer).Compile();
            using var sw = new StringWriter();
            Assert.True(call(table, sw));
            outputs[mime] = sw.ToString();
        }

        Assert.Equal(["text/html", "text/plain"], outputs.Keys.Order());
        Assert.Contains("&lt;x&gt;", outputs["text/html"]);
        Assert.False(attribute.GetType().IsPublic, "internal, so it cannot clash with the kernel's own attribute");
    }

    [Fact]
    public void The_kernel_formatting_library_renders_a_table_by_our_convention()
    {
        var table = new[] { new { Disk = "vda", Ms = 1.5 } }.ToTable("fio");

        Assert.Contains("lab-table", table.ToDisplayString("text/html"));
        Assert.StartsWith("fio\n", table.ToDisplayString("text/plain"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_extension_script_registers_charts_as_plotly_json_with_a_light_html_fallback_in_the_kernel_formatter()
    {
        await KernelFormatterCollection.RunExtensionScriptAsync();
        var chart = Chart.Line<double, double, string>([1, 2], [3, 4], Name: "a").Titled("T").Shade(1, 2, "snapshot");

        Assert.Equal([MimeTypes.Plotly, MimeTypes.Html, MimeTypes.PlainText], Formatter.GetPreferredMimeTypesFor(chart.GetType()));
        var figure = JsonNode.Parse(chart.ToDisplayString(MimeTypes.Plotly))!;
        Assert.Equal("scatter", figure["data"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("rect", figure["layout"]!["shapes"]![0]!["type"]!.GetValue<string>());
        var html = chart.ToDisplayString(MimeTypes.Html);
        Assert.True(html.Length < 1000, "no plotly.js in the html of a chart");
        Assert.Contains("snapshot", html);
    }

    [Fact]
    public async Task The_extension_script_registers_chains_and_findings()
    {
        await KernelFormatterCollection.RunExtensionScriptAsync();
        var chain = new LiveChain("disk0", "dev", [new LiveLayer("top", "/i/top.qcow2", "qcow2", "base.qcow2"), new LiveLayer("#b1", "/i/base.qcow2", "qcow2", null)]);
        var findings = new Findings();
        findings.Check("the writer finished", true, "4000000 lines");

        Assert.Contains("lab-live-chain", chain.ToDisplayString("text/html"));
        Assert.Contains("the writer finished", findings.ToDisplayString("text/html"));
        Assert.Contains("confirmed", findings.ToDisplayString("text/plain"));
    }

    [Fact]
    public void Values_LabNotebooks_does_not_know_have_no_bundle()
    {
        Assert.Null(NotebookFormatters.TryFormat(42));
        Assert.Null(NotebookFormatters.TryFormat(null));
        Assert.Equal([MimeTypes.Plotly, MimeTypes.Html, MimeTypes.PlainText], NotebookFormatters.PreferredMimeTypes(typeof(Plotly.NET.GenericChart)));
    }
}

[CollectionDefinition(nameof(KernelFormatterCollection), DisableParallelization = true)]
public sealed class KernelFormatterCollection
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static bool _ran;

    /// <summary>
    /// Runs the C# cell of extension.dib as the kernel would (a C# submission that has the kernel's formatting
    /// library, LabNotebooks and Plotly.NET referenced), once per test run.
    /// </summary>
    public static async Task RunExtensionScriptAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_ran)
            {
                return;
            }
            var dib = Samples.Read("extension.dib");
            // Each C# cell is a submission of its own, as the kernel runs them; the later one sees the earlier's state.
            var cells = dib.Split("#!csharp", StringSplitOptions.None).Skip(1).Select(c => c.Split("\n#!", 2)[0]).ToList();
            var options = ScriptOptions.Default
                .AddReferences(typeof(Formatter).Assembly, typeof(NotebookFormatters).Assembly, typeof(Plotly.NET.GenericChart).Assembly,
                    typeof(Enumerable).Assembly, typeof(LiveChain).Assembly, typeof(Plotly.NET.CSharp.Chart).Assembly)
                .AddImports("System", "System.Linq");
            ScriptState<object>? state = null;
            foreach (var cell in cells)
            {
                state = state is null ? await CSharpScript.RunAsync(cell, options) : await state.ContinueWithAsync(cell, options);
            }
            _ran = true;
        }
        finally
        {
            Gate.Release();
        }
    }
}
