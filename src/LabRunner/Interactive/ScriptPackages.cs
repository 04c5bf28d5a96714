using LabKernel;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace LabRunner.Interactive;

/// <summary>
/// Restores a .csx's <c>#r "nuget: ..."</c> references with .NET Interactive's package manager
/// (<see cref="PackageRestoreContext"/>, which the notebook kernel's own <c>#r "nuget:"</c> uses, see
/// <see cref="PolyglotKernel"/>): one <c>dotnet msbuild -restore</c> of a generated project under
/// <c>~/.packagemanagement/nuget</c>, with the package sources NuGet's configuration gives in the working folder
/// (as <c>dotnet nuget list source</c> lists them) plus the script's <c>#i</c> sources. A restore of pinned versions is
/// cached there and reused while its assemblies exist; a floating version is restored each run. One instance per
/// script session: the packages restored so far stay referenced, and a package cannot change version once restored.
/// </summary>
internal sealed class ScriptPackages : IDisposable
{
    // Made at the first restore: a script without packages never loads the package manager.
    private readonly Lazy<PackageRestoreContext> _lazyContext = new(() => new PackageRestoreContext());
    private readonly Action<string> _log;

    public ScriptPackages(Action<string>? log = null) => _log = log ?? (_ => { });

    /// <summary>
    /// Restores <paramref name="packages"/> (id and version, null for the latest) with those restored before, from
    /// the configured sources and <paramref name="sources"/> (absolute folders or URLs), and returns the full paths of
    /// the runtime assemblies of every package restored in this session. A failure is a <see cref="LabException"/>
    /// naming the packages and NuGet's errors.
    /// </summary>
    public async Task<IReadOnlyList<string>> RestoreAsync(IReadOnlyCollection<(string Id, string? Version)> packages, IReadOnlyCollection<string> sources)
    {
        var context = _lazyContext.Value;
        foreach (var source in sources)
        {
            context.TryAddRestoreSource(source);
        }
        var names = string.Join("; ", packages.Select(p => p.Version is null ? p.Id : $"{p.Id}, {p.Version}"));
        foreach (var (id, version) in packages)
        {
            if (context.GetOrAddPackageReference(id, version ?? "*") is null)
            {
                var loaded = context.ResolvedPackageReferences.FirstOrDefault(r => r.PackageName.Equals(id, StringComparison.OrdinalIgnoreCase))?.PackageVersion;
                throw new LabException($"restoring {names} failed: {id} is already restored{(loaded is null ? "" : $" at version {loaded}")}; a script cannot change a package's version");
            }
        }
        _log($"restoring {names}");
        PackageRestoreResult result;
        try
        {
            result = await context.RestoreAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The package manager throws for what it cannot start: a source folder that is missing, a restore that timed out.
            throw new LabException($"restoring {names} failed: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        if (!result.Succeeded)
        {
            var why = string.Join(" | ", result.Errors
                .SelectMany(e => e.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Distinct().Take(3));
            throw new LabException($"restoring {names} failed: {(why.Length > 0 ? why : "the package manager gave no error")}");
        }
        return [.. context.ResolvedPackageReferences.SelectMany(r => r.AssemblyPaths).Distinct(StringComparer.Ordinal)];
    }

    public void Dispose()
    {
        if (_lazyContext.IsValueCreated)
        {
            _lazyContext.Value.Dispose();
        }
    }
}
