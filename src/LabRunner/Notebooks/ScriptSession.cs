using System.Collections.Immutable;
using System.Reflection;
using System.Text;
using LabRunner.Interactive;
using LabRunner.Notebooks.Scripting;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.CodeAnalysis.Text;

namespace LabRunner.Notebooks;

/// <summary>How one submission ended.</summary>
internal sealed record SubmissionResult(bool Succeeded, object? ReturnValue, bool HasReturnValue, string? ErrorName, string? ErrorValue, IReadOnlyList<string> Traceback);

/// <summary>
/// One Roslyn script state shared by every cell of a notebook (or by a .csx and what it #loads): variables,
/// usings and references carry from cell to cell, as in Polyglot Notebooks. <c>#r "nuget: ..."</c> is restored by
/// .NET Interactive's package manager (<see cref="ScriptPackages"/>, as the notebook kernel restores it); LabKernel and
/// LabNotebooks resolve to the lab's own assemblies.
/// </summary>
internal sealed class ScriptSession : IDisposable
{
    /// <summary>
    /// dotnet-script's default imports (its <c>ScriptCompiler.ImportedNamespaces</c>), so a .csx that runs here runs
    /// there and the other way round; <c>System.Console</c> is a static import (<c>WriteLine("...")</c> works).
    /// </summary>
    public static readonly string[] DefaultImports =
    [
        "System", "System.IO", "System.Collections.Generic", "System.Console", "System.Diagnostics", "System.Dynamic",
        "System.Linq", "System.Linq.Expressions", "System.Text", "System.Threading.Tasks",
    ];

    private readonly ScriptGlobals _globals;
    private readonly NuGetMetadataResolver _metadataResolver;
    private readonly string _baseDirectory;
    private readonly string? _scriptPath;
    private readonly ScriptPackages _restorer;
    private readonly List<PackageReference> _packages = [];
    private readonly List<string> _sources = [];
    private ScriptOptions _options;
    private ScriptState<object>? _state;

    public ScriptSession(string baseDirectory, string? scriptPath, IReadOnlyList<string> args, Action<string> log)
    {
        _baseDirectory = baseDirectory;
        _scriptPath = scriptPath;
        _globals = new ScriptGlobals(args);
        _restorer = new ScriptPackages(log);
        _metadataResolver = new NuGetMetadataResolver(ScriptMetadataResolver.Default.WithBaseDirectory(baseDirectory));
        _options = ScriptOptions.Default
            .WithReferences(FrameworkReferences())
            .AddReferences(typeof(ScriptGlobals).Assembly)
            .WithImports(DefaultImports)
            .WithMetadataResolver(_metadataResolver)
            .WithSourceResolver(new DirectiveStrippingSourceResolver(baseDirectory))
            .WithLanguageVersion(LanguageVersion.Preview)
            .WithAllowUnsafe(true)
            .WithEmitDebugInformation(true)
            .WithFileEncoding(Encoding.UTF8);
        if (scriptPath is not null)
        {
            _options = _options.WithFilePath(scriptPath);
        }
    }

    public async Task<SubmissionResult> ExecuteAsync(string cellCode)
    {
        var (code, sources) = Directives.Preprocess(cellCode);
        try
        {
            await PrepareReferencesAsync(cellCode, sources).ConfigureAwait(false);
        }
        catch (LabKernel.LabException e)
        {
            return new SubmissionResult(false, null, false, "PackageRestoreError", e.Message, [e.Message]);
        }

        var script = _state is null
            ? CSharpScript.Create(code, _options, typeof(ScriptGlobals))
            : _state.Script.ContinueWith(code, _options);
        var diagnostics = script.Compile();
        var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            var lines = errors.Select(d => d.ToString()).ToList();
            return new SubmissionResult(false, null, false, "CompilationError", string.Join("\n", lines), lines);
        }

        ScriptState<object> next;
        try
        {
            next = _state is null
                ? await script.RunAsync(_globals, catchException: _ => true).ConfigureAwait(false)
                : await script.RunFromAsync(_state, catchException: _ => true).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Failed(e);
        }
        _state = next;
        if (next.Exception is { } ex)
        {
            return Failed(ex);
        }
        var hasValue = HasTrailingExpressionOrReturn(code);
        return new SubmissionResult(true, next.ReturnValue, hasValue && next.ReturnValue is not null, null, null, []);
    }

    public void Dispose() => _restorer.Dispose();

    private static SubmissionResult Failed(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg)
        {
            e = agg.InnerExceptions[0];
        }
        if (e is TargetInvocationException { InnerException: { } inner })
        {
            e = inner;
        }
        var trace = e.ToString().Split('\n').Select(l => l.TrimEnd('\r'))
            .Where(l => !l.Contains("Microsoft.CodeAnalysis.Scripting", StringComparison.Ordinal))
            .ToList();
        return new SubmissionResult(false, null, false, e.GetType().Name, e.Message, trace);
    }

    /// <summary>A cell ending in an expression without a semicolon, or a script returning a value, has a result.</summary>
    private static bool HasTrailingExpressionOrReturn(string code)
    {
        var tree = CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Preview, kind: SourceCodeKind.Script));
        var root = (Microsoft.CodeAnalysis.CSharp.Syntax.CompilationUnitSyntax)tree.GetRoot();
        if (root.Members.LastOrDefault() is Microsoft.CodeAnalysis.CSharp.Syntax.GlobalStatementSyntax
            { Statement: Microsoft.CodeAnalysis.CSharp.Syntax.ExpressionStatementSyntax expr } && expr.SemicolonToken.IsMissing)
        {
            return true;
        }
        return root.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.ReturnStatementSyntax>().Any(r => r.Expression is not null);
    }

    private async Task PrepareReferencesAsync(string cellCode, List<string> cellSources)
    {
        var (packages, loadedSources) = Directives.Scan(cellCode, _baseDirectory);
        foreach (var s in cellSources)
        {
            AddSource(s, _baseDirectory);
        }
        foreach (var (s, dir) in loadedSources)
        {
            AddSource(s, dir);
        }
        // Roslyn binds one assembly per #r: a lab package's dependencies (LabNotebooks: Plotly.NET...) become
        // references of the session here, so cells can use their types too.
        foreach (var p in packages.Where(IsLabKernel))
        {
            _options = _options.AddReferences(LabPackageAssemblies(p.Id).Skip(1).Select(f => MetadataReference.CreateFromFile(f)));
        }
        var fresh = new List<PackageReference>();
        foreach (var p in packages.Where(p => !IsLabKernel(p)))
        {
            if (!_packages.Any(q => q.Id.Equals(p.Id, StringComparison.OrdinalIgnoreCase) && q.Version == p.Version))
            {
                // A later reference to the same package in one submission wins (a #load'ed file's, say).
                fresh.RemoveAll(q => q.Id.Equals(p.Id, StringComparison.OrdinalIgnoreCase));
                fresh.Add(p);
            }
        }
        if (fresh.Count > 0)
        {
            // The package manager restores the new packages together with those restored before, so that shared
            // dependencies agree; a package already restored keeps its version.
            var assemblies = await _restorer.RestoreAsync([.. fresh.Select(p => (p.Id, p.Version))], _sources).ConfigureAwait(false);
            _packages.AddRange(fresh);
            _metadataResolver.SetPackageAssemblies(assemblies);
        }
    }

    private void AddSource(string source, string directory)
    {
        var resolved = Uri.TryCreate(source, UriKind.Absolute, out var uri) && !uri.IsFile ? source : Path.GetFullPath(source, directory);
        // A missing local folder would fail every restore; it only matters when a package needs it.
        if ((resolved.Contains("://", StringComparison.Ordinal) || Directory.Exists(resolved)) && !_sources.Contains(resolved))
        {
            _sources.Add(resolved);
        }
    }

    /// <summary>
    /// LabKernel and LabNotebooks resolve to the lab's own assemblies (no restore, and always the code the lab was
    /// built from), unless LAB_LABKERNEL_FROM_PACKAGE=1 asks for the packed ones, as VS Code would restore them.
    /// </summary>
    internal static bool IsLabKernel(PackageReference p) =>
        (p.Id.Equals("LabKernel", StringComparison.OrdinalIgnoreCase) || p.Id.Equals("LabNotebooks", StringComparison.OrdinalIgnoreCase))
        && Environment.GetEnvironmentVariable("LAB_LABKERNEL_FROM_PACKAGE") != "1";

    /// <summary>
    /// The lab's own copy of a lab package: its assembly and every assembly it references that ships beside the
    /// lab (LabNotebooks brings LabKernel, Plotly.NET, Plotly.NET.CSharp, FSharp.Core...).
    /// </summary>
    internal static IReadOnlyList<string> LabPackageAssemblies(string id)
    {
        var root = id.Equals("LabNotebooks", StringComparison.OrdinalIgnoreCase) ? typeof(LabNotebooks.Table).Assembly : typeof(LabKernel.LabException).Assembly;
        var found = new List<string> { root.Location };
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { root.GetName().Name! };
        var pending = new Queue<Assembly>([root]);
        while (pending.TryDequeue(out var assembly))
        {
            foreach (var name in assembly.GetReferencedAssemblies())
            {
                var file = Path.Combine(AppContext.BaseDirectory, name.Name + ".dll");
                if (seen.Add(name.Name!) && File.Exists(file))
                {
                    found.Add(file);
                    pending.Enqueue(Assembly.Load(name));
                }
            }
        }
        return found;
    }

    /// <summary>The shared framework the lab runs on: every assembly in the runtime directory.</summary>
    private static IEnumerable<MetadataReference> FrameworkReferences()
    {
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var tpa = ((AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string) ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return tpa.Where(p => Path.GetDirectoryName(p) == runtimeDir && IsManaged(p))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p));
    }

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

    /// <summary>Resolves <c>#r "nuget: ..."</c> to restored assemblies and LabKernel to the lab's own; other #r as usual.</summary>
    private sealed class NuGetMetadataResolver(MetadataReferenceResolver inner) : MetadataReferenceResolver
    {
        private ImmutableArray<PortableExecutableReference> _packageAssemblies = [];

        public void SetPackageAssemblies(IEnumerable<string> paths) =>
            _packageAssemblies = [.. paths.Select(p => MetadataReference.CreateFromFile(p))];

        public override ImmutableArray<PortableExecutableReference> ResolveReference(string reference, string? baseFilePath, MetadataReferenceProperties properties)
        {
            var trimmed = reference.Trim();
            if (trimmed.StartsWith("nuget:", StringComparison.OrdinalIgnoreCase))
            {
                var package = Directives.ParsePackage(trimmed["nuget:".Length..].Trim());
                if (IsLabKernel(package))
                {
                    return [MetadataReference.CreateFromFile(LabPackageAssemblies(package.Id)[0])];
                }
                return _packageAssemblies;
            }
            return inner.ResolveReference(reference, baseFilePath, properties);
        }

        public override bool ResolveMissingAssemblies => inner.ResolveMissingAssemblies;

        public override PortableExecutableReference? ResolveMissingAssembly(MetadataReference definition, AssemblyIdentity referenceIdentity) =>
            inner.ResolveMissingAssembly(definition, referenceIdentity);

        public override bool Equals(object? other) => ReferenceEquals(this, other);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);
    }

    /// <summary>Reads #load'ed files with their <c>#i</c> lines and magic commands blanked, like cells.</summary>
    private sealed class DirectiveStrippingSourceResolver(string baseDirectory) : SourceReferenceResolver
    {
        private readonly SourceFileResolver _inner = new([], baseDirectory);

        public override string? NormalizePath(string path, string? baseFilePath) => _inner.NormalizePath(path, baseFilePath);

        public override string? ResolveReference(string path, string? baseFilePath) => _inner.ResolveReference(path, baseFilePath);

        public override Stream OpenRead(string resolvedPath)
        {
            var (code, _) = Directives.Preprocess(File.ReadAllText(resolvedPath));
            return new MemoryStream(Encoding.UTF8.GetBytes(code));
        }

        public override SourceText ReadText(string resolvedPath) =>
            SourceText.From(Directives.Preprocess(File.ReadAllText(resolvedPath)).Code, Encoding.UTF8);

        public override bool Equals(object? other) => ReferenceEquals(this, other);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);
    }
}
