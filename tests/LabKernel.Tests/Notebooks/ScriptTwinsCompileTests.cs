using System.Collections.Immutable;
using System.Reflection;
using LabRunner.Notebooks.Scripting;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;

namespace LabKernel.Tests.Notebooks;

/// <summary>
/// Every .csx twin in scripts/ compiles as dotnet-script compiles it: globals that are only <c>Args</c>
/// (an <c>IList&lt;string&gt;</c>), <c>#load</c> relative to the script, <c>#r "nuget: LabKernel"</c> as the packed
/// library. Compile only: no guest boots.
/// </summary>
public sealed class ScriptTwinsCompileTests
{
    public static TheoryData<string> Twins()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(Runner.RunnerTestSupport.RepoRoot, "scripts"), "*.csx").Order())
        {
            data.Add(Path.GetFileName(f));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Twins))]
    public void Given_a_csx_twin_When_compiled_with_dotnet_script_globals_Then_it_has_no_errors(string name)
    {
        var path = Path.Combine(Runner.RunnerTestSupport.RepoRoot, "scripts", name);
        var scriptsDir = Path.GetDirectoryName(path)!;
        var options = ScriptOptions.Default
            .WithFilePath(path)
            .WithReferences(FrameworkReferences())
            // A #r resolves to one assembly: what LabNotebooks brings (Plotly.NET, FSharp.Core...) comes as references.
            .AddReferences(LabRunner.Notebooks.ScriptSession.LabPackageAssemblies("LabNotebooks").Skip(1).Select(f => MetadataReference.CreateFromFile(f)))
            .WithMetadataResolver(new LabKernelResolver(ScriptMetadataResolver.Default.WithBaseDirectory(scriptsDir)))
            .WithSourceResolver(new SourceFileResolver([], scriptsDir))
            // The runner's default imports, which are dotnet-script's (ScriptSessionImportsTests pins the list).
            .WithImports(LabRunner.Notebooks.ScriptSession.DefaultImports);

        var errors = CSharpScript.Create(File.ReadAllText(path), options, typeof(ScriptGlobals)).Compile()
            .Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void ScriptArgs_takes_dotnet_script_Args_which_is_an_IList()
    {
        IList<string> args = ["Count=100000", "SnapshotAfterLines=20000"];

        Assert.Equal(100000L, LabKernel.Experiments.ScriptArgs.Get(args, "Count", 5L));
        Assert.Equal(7, LabKernel.Experiments.ScriptArgs.Get(args, "Missing", 7));
    }

    private static IEnumerable<MetadataReference> FrameworkReferences()
    {
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        foreach (var dll in Directory.GetFiles(runtimeDir, "*.dll"))
        {
            MetadataReference? reference = null;
            try
            {
                AssemblyName.GetAssemblyName(dll);
                reference = MetadataReference.CreateFromFile(dll);
            }
            catch (BadImageFormatException)
            {
            }
            if (reference is not null)
            {
                yield return reference;
            }
        }
    }

    /// <summary><c>#r "nuget: LabKernel, ..."</c> is the LabKernel.dll the tests were built with; nothing else is restored.</summary>
    private sealed class LabKernelResolver(MetadataReferenceResolver inner) : MetadataReferenceResolver
    {
        public override ImmutableArray<PortableExecutableReference> ResolveReference(string reference, string? baseFilePath, MetadataReferenceProperties properties)
        {
            var r = reference.Replace(" ", "", StringComparison.Ordinal);
            if (r.StartsWith("nuget:LabKernel,", StringComparison.OrdinalIgnoreCase))
            {
                return [MetadataReference.CreateFromFile(typeof(LabException).Assembly.Location)];
            }
            // LabNotebooks itself; its dependencies are in the options' references.
            return r.StartsWith("nuget:LabNotebooks,", StringComparison.OrdinalIgnoreCase)
                ? [MetadataReference.CreateFromFile(LabRunner.Notebooks.ScriptSession.LabPackageAssemblies("LabNotebooks")[0])]
                : inner.ResolveReference(reference, baseFilePath, properties);
        }

        public override bool Equals(object? other) => ReferenceEquals(this, other);

        public override int GetHashCode() => 1;
    }
}

/// <summary>`lab run X.csx` imports what dotnet-script imports by default: no more, no less.</summary>
public sealed class ScriptSessionImportsTests
{
    [Fact]
    public void Given_the_runners_csx_imports_When_compared_with_dotnet_scripts_defaults_Then_they_are_the_same_set()
    {
        // dotnet-script's list (ScriptCompiler.ImportedNamespaces), written out here as the reference.
        string[] dotnetScript = ["System", "System.IO", "System.Collections.Generic", "System.Console", "System.Diagnostics", "System.Dynamic", "System.Linq", "System.Linq.Expressions", "System.Text", "System.Threading.Tasks"];

        Assert.Equal(dotnetScript.Order(), LabRunner.Notebooks.ScriptSession.DefaultImports.Order());
    }
}
