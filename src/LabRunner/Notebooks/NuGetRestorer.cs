using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel;
using LabKernel.Processes;

namespace LabRunner.Notebooks;

/// <summary>
/// Resolves <c>#r "nuget: ..."</c> references the way a project would: it writes a small project with those
/// PackageReferences (and the <c>#i</c> sources as RestoreAdditionalProjectSources), runs <c>dotnet restore</c>,
/// and reads the runtime assemblies of every package from obj/project.assets.json. Results are cached under
/// $XDG_CACHE_HOME/labnotebooks/nuget (or ~/.cache/labnotebooks/nuget) by a hash of the references and sources,
/// so a notebook run again does not restore again.
/// </summary>
public sealed class NuGetRestorer
{
    private readonly string _cacheRoot;
    private readonly Action<string> _log;

    public NuGetRestorer(string? cacheRoot = null, Action<string>? log = null)
    {
        _cacheRoot = cacheRoot ?? DefaultCacheRoot();
        _log = log ?? (_ => { });
    }

    public static string DefaultCacheRoot() =>
        CacheRoot(Environment.GetEnvironmentVariable("XDG_CACHE_HOME"), Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>$XDG_CACHE_HOME/labnotebooks/nuget, or HOME/.cache/labnotebooks/nuget when it is unset or not absolute.</summary>
    internal static string CacheRoot(string? xdgCacheHome, string home)
    {
        var root = string.IsNullOrEmpty(xdgCacheHome) || !Path.IsPathRooted(xdgCacheHome) ? Path.Combine(home, ".cache") : xdgCacheHome;
        return Path.Combine(root, "labnotebooks", "nuget");
    }

    /// <summary>Restores <paramref name="packages"/> together and returns the full paths of their runtime assemblies.</summary>
    public async Task<IReadOnlyList<string>> RestoreAsync(
        IReadOnlyCollection<PackageReference> packages,
        IReadOnlyCollection<string> sources,
        CancellationToken cancellationToken = default)
    {
        if (packages.Count == 0)
        {
            return [];
        }
        var sortedPackages = packages.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase).ToList();
        var tfm = $"net{Environment.Version.Major}.{Environment.Version.Minor}";
        var key = string.Join('\n', [tfm, .. sortedPackages.Select(p => $"{p.Id.ToLowerInvariant()}/{p.Version ?? "*"}"), .. sources.Order(StringComparer.Ordinal)]);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
        var dir = Path.Combine(_cacheRoot, hash);
        var refsFile = Path.Combine(dir, "references.txt");
        // A floating version ("latest") is restored each run; pinned versions come from the cache.
        var floating = sortedPackages.Any(p => p.Version is null || p.Version.Contains('*'));
        if (!floating && File.Exists(refsFile))
        {
            var cached = (await File.ReadAllLinesAsync(refsFile, cancellationToken).ConfigureAwait(false)).Where(l => l.Length > 0).ToList();
            if (cached.All(File.Exists))
            {
                return cached;
            }
        }

        Directory.CreateDirectory(dir);
        // Empty Directory.Build.* files stop MSBuild from importing whatever lies above the cache folder.
        foreach (var stop in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
        {
            await File.WriteAllTextAsync(Path.Combine(dir, stop), "<Project />\n", cancellationToken).ConfigureAwait(false);
        }
        var items = string.Concat(sortedPackages.Select(p =>
            $"    <PackageReference Include=\"{Xml(p.Id)}\" Version=\"{Xml(p.Version ?? "*")}\" />\n"));
        var project = $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>{tfm}</TargetFramework>
                <OutputType>Library</OutputType>
                <RestoreAdditionalProjectSources>{Xml(string.Join(';', sources))}</RestoreAdditionalProjectSources>
                <NoWarn>$(NoWarn);NU1603;NU1701</NoWarn>
              </PropertyGroup>
              <ItemGroup>
            {items}  </ItemGroup>
            </Project>

            """;
        var projectPath = Path.Combine(dir, "notebook-references.csproj");
        await File.WriteAllTextAsync(projectPath, project, cancellationToken).ConfigureAwait(false);
        _log($"restoring {string.Join(", ", sortedPackages)}");
        var result = await ProcessRunner.RunAsync(
            ProcessRunner.Which("dotnet") ?? "dotnet",
            ["restore", projectPath, "--nologo", "--verbosity", "quiet"],
            new ProcessOptions
            {
                Timeout = TimeSpan.FromMinutes(10),
                WorkingDirectory = dir,
                Check = false,
                Environment = RestoreEnvironment(),
            },
            cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            var why = string.Join(" | ", (result.StandardOutput + "\n" + result.StandardError)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Distinct().Take(3));
            throw new LabException($"restoring {string.Join("; ", sortedPackages)} failed: {(why.Length > 0 ? why : $"dotnet restore exited with {result.ExitCode}")}");
        }
        var assemblies = ReadAssets(Path.Combine(dir, "obj", "project.assets.json"), tfm);
        await File.WriteAllLinesAsync(refsFile, assemblies, cancellationToken).ConfigureAwait(false);
        return assemblies;
    }

    /// <summary>The runtime assemblies of every package in a restore's assets file.</summary>
    internal static List<string> ReadAssets(string assetsPath, string tfm)
    {
        var assets = JsonNode.Parse(File.ReadAllText(assetsPath)) as JsonObject ?? throw new LabException($"{assetsPath} is not JSON");
        var packageFolder = (assets["packageFolders"] as JsonObject)?.Select(kv => kv.Key).FirstOrDefault()
            ?? throw new LabException($"{assetsPath} names no package folder");
        var libraries = assets["libraries"] as JsonObject ?? [];
        var target = (assets["targets"] as JsonObject)?.FirstOrDefault(kv => kv.Key.StartsWith(tfm, StringComparison.OrdinalIgnoreCase) || kv.Key.StartsWith(".NETCoreApp", StringComparison.Ordinal)).Value as JsonObject
            ?? throw new LabException($"{assetsPath} has no target for {tfm}");
        var result = new List<string>();
        foreach (var (name, node) in target)
        {
            if (node is not JsonObject lib || lib["type"]?.GetValue<string>() != "package" || lib["runtime"] is not JsonObject runtime)
            {
                continue;
            }
            var libPath = libraries[name]?["path"]?.GetValue<string>() ?? name.ToLowerInvariant();
            foreach (var (file, _) in runtime)
            {
                if (file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
                {
                    result.Add(Path.GetFullPath(Path.Combine(packageFolder, libPath, file)));
                }
            }
        }
        return result;
    }

    /// <summary>
    /// The environment for the nested dotnet: without the MSBuild variables a parent build or test host sets,
    /// which would point the restore at the wrong SDK files.
    /// </summary>
    internal static Dictionary<string, string?> RestoreEnvironment() => new()
    {
        ["MSBuildSDKsPath"] = null,
        ["MSBUILD_EXE_PATH"] = null,
        ["MSBuildExtensionsPath"] = null,
        ["MSBuildLoadMicrosoftTargetsReadOnly"] = null,
        ["MSBUILDNOINPROCNODE"] = null,
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
        ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
    };

    private static string Xml(string s) => System.Security.SecurityElement.Escape(s);
}
