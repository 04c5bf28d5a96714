using System.Reflection;
using System.Text.RegularExpressions;
using LabRunner.Notebooks;
using LabRunner.Notebooks.Scripting;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;

namespace LabKernel.Tests.Notebooks;

/// <summary>
/// The experiment notebooks need a booted guest to run, but their C# must compile against the lab's LabKernel and
/// LabNotebooks (Plotly.NET charts, tables, renderers): every cell is compiled in order, as `lab run` would, and
/// nothing is run.
/// </summary>
public sealed partial class NotebookCompileTests
{
    public static TheoryData<string> Notebooks => new() { "01-live-snapshot-integrity", "02-snapshot-and-commit-integrity", "03-drive-mirror" };

    [Theory]
    [MemberData(nameof(Notebooks))]
    public void Given_an_experiment_notebook_When_every_cell_is_compiled_Then_there_are_no_errors(string name)
    {
        var path = Path.Combine(RepositoryRoot(), "notebooks", "src", name + ".dib");
        var notebook = NotebookReader.Read(path);
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetDirectoryName(p) == runtimeDir && IsManaged(p));
        var options = ScriptOptions.Default
            .WithReferences(framework.Select(p => MetadataReference.CreateFromFile(p)))
            .AddReferences(typeof(NotebookGlobals).Assembly)
            .AddReferences(ScriptSession.LabPackageAssemblies("LabNotebooks").Select(p => MetadataReference.CreateFromFile(p)))
            .WithImports(ScriptSession.DefaultImports)
            .WithAllowUnsafe(true);

        Script? script = null;
        var errors = new List<string>();
        foreach (var cell in notebook.Cells.Where(c => c.Kind == CellKind.Code && (c.Language ?? "csharp") == "csharp"))
        {
            // `lab run` resolves the #r lines to the same assemblies referenced above.
            var code = NuGetReference().Replace(Directives.Preprocess(cell.Source).Code, "");
            script = script is null ? CSharpScript.Create(code, options, typeof(NotebookGlobals)) : script.ContinueWith(code, options);
            errors.AddRange(script.Compile().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => $"cell {cell.Id}: {d}"));
        }

        Assert.NotNull(script);
        Assert.Empty(errors);
    }

    [GeneratedRegex("""^\s*#r\s+"nuget:[^"]*"\s*$""", RegexOptions.Multiline)]
    private static partial Regex NuGetReference();

    private static bool IsManaged(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LabNotebooks.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException("LabNotebooks.sln not found above " + AppContext.BaseDirectory);
    }
}
