using System.Text.RegularExpressions;
using LabKernel.Tests.Runner;

namespace LabKernel.Tests.Architecture;

/// <summary>
/// LabKernel is built in layers, and a lower layer never imports a higher one (docs/ARCHITECTURE.md): its
/// namespace graph, read from the sources, has no cycle. And LabKernel renders nothing: tables, charts and HTML
/// belong to LabNotebooks, console output to the lab program.
/// </summary>
public sealed class LayeringTests
{
    private static string LabKernelSources => Path.Combine(RunnerTestSupport.RepoRoot, "src", "LabKernel");

    [Fact]
    public void Given_the_LabKernel_sources_When_their_namespace_graph_is_read_Then_it_has_no_cycle()
    {
        var graph = NamespaceGraph.FromFolder(LabKernelSources, "LabKernel");

        Assert.Contains("LabKernel.Host", graph.Namespaces);
        Assert.NotEmpty(graph.DependenciesOf("LabKernel.Machines"));
        var cycles = graph.Cycles();
        Assert.True(cycles.Count == 0,
            "LabKernel's namespaces must form layers (a lower layer never imports a higher one), but:\n" + string.Join("\n", cycles));
    }

    /// <summary>The same rule for every project under src/: LabNotebooks and the lab program (LabRunner) too.</summary>
    [Theory]
    [InlineData("LabKernel")]
    [InlineData("LabNotebooks")]
    [InlineData("LabRunner")]
    public void Given_a_projects_sources_When_their_namespace_graph_is_read_Then_it_has_no_cycle(string project)
    {
        var graph = NamespaceGraph.FromFolder(Path.Combine(RunnerTestSupport.RepoRoot, "src", project), project);

        Assert.NotEmpty(graph.Namespaces);
        var cycles = graph.Cycles();
        Assert.True(cycles.Count == 0, $"{project}'s namespaces must form layers (a lower layer never imports a higher one), but:\n" + string.Join("\n", cycles));
    }

    /// <summary>LabRunner's layers from the bottom, as docs/ARCHITECTURE.md lists them; a sub-namespace is in its parent's layer.</summary>
    internal static readonly string[] LabRunnerLayers =
        ["LabRunner.Interactive", "LabRunner.Notebooks", "LabRunner.Reporting", "LabRunner.Commands", "LabRunner.Cli"];

    [Fact]
    public void Given_the_LabRunner_sources_When_their_namespace_graph_is_read_Then_each_layer_imports_only_the_layers_below_it()
    {
        var graph = NamespaceGraph.FromFolder(Path.Combine(RunnerTestSupport.RepoRoot, "src", "LabRunner"), "LabRunner");

        Assert.NotEmpty(graph.DependenciesOf("LabRunner.Reporting"));
        var violations = LayerViolations(graph, LabRunnerLayers);
        Assert.True(violations.Count == 0,
            "LabRunner's namespaces are layers (Interactive < Notebooks < Reporting < Commands < Cli, docs/ARCHITECTURE.md), but:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void Given_a_lower_layer_that_names_a_higher_one_When_checked_Then_the_import_is_named_even_without_a_cycle()
    {
        var graph = NamespaceGraph.FromSources(
        [
            ("Notebooks/Runner.cs", "namespace LabRunner.Notebooks;\npublic sealed class Runner { object R => new Reporting.HtmlReport(); }\n"),
            ("Reporting/HtmlReport.cs", "namespace LabRunner.Reporting;\npublic sealed class HtmlReport { }\n"),
            ("Tools/Odd.cs", "namespace LabRunner.Tools;\npublic sealed class Odd { }\n"),
        ], "LabRunner");

        var violations = LayerViolations(graph, LabRunnerLayers);

        Assert.Empty(graph.Cycles());
        Assert.Contains(violations, v => v.Contains("Notebooks imports Reporting, a higher layer", StringComparison.Ordinal) && v.Contains("Reporting.HtmlReport", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("LabRunner.Tools is in no layer", StringComparison.Ordinal));
    }

    [Fact]
    public void Given_the_LabRunner_sources_When_searched_for_dotnet_interactive_Then_only_the_Interactive_folder_uses_it()
    {
        var folder = Path.Combine(RunnerTestSupport.RepoRoot, "src", "LabRunner");
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(folder, file).Replace('\\', '/');
            if (relative.Split('/') is var parts && (parts.Any(p => p is "bin" or "obj") || parts[0] == "Interactive"))
            {
                continue;
            }
            found.AddRange(Regex.Matches(NamespaceGraph.CodeOnly(File.ReadAllText(file)), @"\bMicrosoft\.DotNet\.Interactive\b[\w.]*").Select(m => $"{relative}: {m.Value}"));
        }

        Assert.True(found.Count == 0, "Only src/LabRunner/Interactive touches .NET Interactive (docs/ARCHITECTURE.md), but:\n" + string.Join("\n", found));
    }

    /// <summary>Each import of a higher layer, with its references, and each namespace in no layer.</summary>
    private static List<string> LayerViolations(NamespaceGraph graph, string[] layers)
    {
        int? LayerOf(string ns) => Array.FindIndex(layers, l => ns == l || ns.StartsWith(l + ".", StringComparison.Ordinal)) is var i and >= 0 ? i : null;
        string Short(string ns) => ns[(graph.RootNamespace.Length + 1)..];
        var violations = new List<string>();
        foreach (var ns in graph.Namespaces.Order(StringComparer.Ordinal))
        {
            if (LayerOf(ns) is not { } layer)
            {
                violations.Add($"{ns} is in no layer: add it to the list (and to docs/ARCHITECTURE.md)");
                continue;
            }
            foreach (var (target, references) in graph.DependenciesOf(ns))
            {
                if (LayerOf(target) is { } above && above > layer)
                {
                    violations.Add($"{Short(ns)} imports {Short(target)}, a higher layer, because {string.Join(" | ", references.Take(3))}");
                }
            }
        }
        return violations;
    }

    [Fact]
    public void Given_every_project_under_src_When_listed_Then_each_is_covered_by_the_layering_test()
    {
        var projects = Directory.GetDirectories(Path.Combine(RunnerTestSupport.RepoRoot, "src")).Select(d => Path.GetFileName(d)!).Order().ToArray();

        Assert.Equal(["LabKernel", "LabNotebooks", "LabRunner"], projects);
    }

    [Fact]
    public void Given_the_LabKernel_sources_When_searched_for_rendering_Then_none_writes_to_the_console_encodes_HTML_or_draws_charts()
    {
        var forbidden = new Regex(@"\bConsole\s*\.|\bHtmlEncode\b|\bPlotly\b|\bSpectre\b");
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(LabKernelSources, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(LabKernelSources, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
            {
                continue;
            }
            var code = NamespaceGraph.CodeOnly(File.ReadAllText(file));
            found.AddRange(forbidden.Matches(code).Select(m => $"{relative}: {m.Value}"));
        }
        var project = File.ReadAllText(Path.Combine(LabKernelSources, "LabKernel.csproj"));
        found.AddRange(forbidden.Matches(project).Select(m => $"LabKernel.csproj: {m.Value}"));

        Assert.True(found.Count == 0, "LabKernel must not render (that is LabNotebooks' and the lab program's job), but:\n" + string.Join("\n", found));
    }

    [Fact]
    public void Given_two_namespaces_that_import_each_other_When_the_graph_is_read_Then_the_cycle_is_named_with_its_references()
    {
        var graph = NamespaceGraph.FromSources(
        [
            ("Low/A.cs", "using LabKernel.High;\nnamespace LabKernel.Low;\npublic sealed class A { }\n"),
            ("High/B.cs", "namespace LabKernel.High;\npublic sealed class B { object X => Low.A.Make(); }\n"),
        ], "LabKernel");

        var cycle = Assert.Single(graph.Cycles());

        Assert.Contains("High -> Low -> High", cycle);
        Assert.Contains("High/B.cs: Low.A", cycle);
        Assert.Contains("Low/A.cs: using LabKernel.High;", cycle);
    }

    [Fact]
    public void Given_references_only_in_comments_crefs_and_strings_When_the_graph_is_read_Then_they_make_no_dependency()
    {
        var graph = NamespaceGraph.FromSources(
        [
            ("Low/A.cs", """
                namespace LabKernel.Low;
                /// <summary>Made by <see cref="High.B"/>, see <see cref="LabKernel.High.B"/>.</summary>
                public sealed class A
                {
                    // High.B calls this.
                    /* LabKernel.High.B too */
                    public string Name => "High.B" + @"High.B" + 'H';
                }
                """),
            ("High/B.cs", "using LabKernel.Low;\nnamespace LabKernel.High;\npublic sealed class B { }\n"),
        ], "LabKernel");

        Assert.Empty(graph.Cycles());
        Assert.Empty(graph.DependenciesOf("LabKernel.Low"));
        Assert.Contains("LabKernel.Low", graph.DependenciesOf("LabKernel.High").Keys);
    }

    [Fact]
    public void Given_a_qualified_reference_inside_an_interpolation_hole_When_the_graph_is_read_Then_it_counts()
    {
        var graph = NamespaceGraph.FromSources(
        [
            ("Low/A.cs", "namespace LabKernel.Low;\npublic static class A { static string S(string d) => $\"dd of={LabKernel.High.B.Quote(d)} {{not.code}}\"; }\n"),
            ("High/B.cs", "using LabKernel.Low;\nnamespace LabKernel.High;\npublic static class B { }\n"),
        ], "LabKernel");

        Assert.Contains("LabKernel.High", graph.DependenciesOf("LabKernel.Low").Keys);
        Assert.Single(graph.Cycles());
    }

    [Fact]
    public void Given_the_root_namespace_imports_a_child_When_the_graph_is_read_Then_that_is_a_cycle_since_every_child_sees_the_root()
    {
        var graph = NamespaceGraph.FromSources(
        [
            ("LabException.cs", "using LabKernel.Host;\nnamespace LabKernel;\npublic class LabException { }\n"),
            ("Host/Paths.cs", "namespace LabKernel.Host;\npublic static class Paths { }\n"),
        ], "LabKernel");

        Assert.Contains("LabKernel -> Host -> LabKernel", Assert.Single(graph.Cycles()));
    }
}
