using System.Security.Cryptography;
using System.Text.RegularExpressions;
using LabKernel.Experiments;
using LabKernel.Processes;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Notebooks;

/// <summary>
/// Every generated .NET 10 file-based app (scripts/NN-name.cs) builds with <c>dotnet build</c> against the packed
/// LabNotebooks in artifacts/packages (the repository's nuget.config names it; scripts/test packs it before the tests
/// run), and refuses a parameter its notebook does not declare in one line, exit 2, before anything starts. No guest
/// boots: a run with a valid parameter set is the integration test <c>Notebooks/FileBasedAppTests</c>.
/// </summary>
public sealed partial class FileBasedAppsTests
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The generated apps: scripts/NN-name.cs, one per notebooks/src/NN-name.dib.</summary>
    public static TheoryData<string> Apps()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot, "scripts"), "*.cs").Where(f => AppName().IsMatch(Path.GetFileName(f))).Order())
        {
            data.Add(Path.GetFileName(f));
        }
        return data;
    }

    private static string Version =>
        Regex.Match(File.ReadAllText(Path.Combine(RepoRoot, "Directory.Build.props")), "<Version>([^<]+)</Version>").Groups[1].Value;

    private static string PackedLabNotebooks => Path.Combine(RepoRoot, "artifacts", "packages", $"LabNotebooks.{Version}.nupkg");

    private static Dictionary<string, string?> Environment => new()
    {
        ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
    };

    [Theory]
    [MemberData(nameof(Apps))]
    public void Given_an_app_When_read_Then_it_names_the_packed_version_and_checks_its_parameters_before_any_cell(string name)
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "scripts", name));

        Assert.Contains($"#:package LabNotebooks@{Version}\n", text, StringComparison.Ordinal);
        Assert.Contains("using static LabNotebooks.ConsoleRun;", text, StringComparison.Ordinal);
        var start = text.IndexOf("args = ConsoleRun.Start(args, ", StringComparison.Ordinal);
        var check = text.IndexOf("ScriptArgs.CheckNames(args, [", StringComparison.Ordinal);
        var lab = text.IndexOf("Lab.StartAsync(", StringComparison.Ordinal);
        Assert.True(start >= 0 && check > start && lab > check, "ConsoleRun.Start(args, ...), then the parameters' CheckNames, then Lab.StartAsync");
        Assert.EndsWith("\nreturn ConsoleRun.Exit();\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Apps))]
    public async Task Given_an_app_When_built_against_the_packed_LabNotebooks_Then_it_compiles_and_refuses_an_unknown_parameter_in_one_line(string name)
    {
        Assert.True(File.Exists(PackedLabNotebooks), $"{PackedLabNotebooks} is missing: run scripts/pack-labkernel (scripts/test does)");
        var app = Path.Combine(RepoRoot, "scripts", name);

        var build = await ProcessRunner.RunAsync("dotnet", ["build", app, "-nologo", "-v", "quiet", "-clp:ErrorsOnly"],
            new ProcessOptions { Check = false, Timeout = BuildTimeout, WorkingDirectory = RepoRoot, Environment = Environment });

        Assert.True(build.ExitCode == 0, $"dotnet build {name} exited {build.ExitCode}:\n{build.StandardOutput}\n{build.StandardError}");
        AssertRestoredIsPacked();
        // The check comes before anything starts (the test above), so this boots nothing.
        var run = await ProcessRunner.RunAsync("dotnet", ["run", "--no-build", app, "--", "NoSuchParameter=1"],
            new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(1), WorkingDirectory = RepoRoot, Environment = Environment });
        Assert.Equal(LabNotebooks.ConsoleRun.UsageError, run.ExitCode);
        var line = Assert.Single(run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"{Path.GetFileNameWithoutExtension(name)}: unknown parameter 'NoSuchParameter'; the parameters are: ", line, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckNames_refuses_an_unknown_name_and_an_argument_without_a_value_and_takes_names_in_any_case()
    {
        string[] declared = ["Count", "Quiesce"];

        ScriptArgs.CheckNames(["count=5", "Quiesce=sync"], declared);
        var unknown = Assert.Throws<LabUsageException>(() => ScriptArgs.CheckNames(["Count=5", "Cuont=6"], declared));
        Assert.Equal("unknown parameter 'Cuont'; the parameters are: Count, Quiesce", unknown.Message);
        var bare = Assert.Throws<LabUsageException>(() => ScriptArgs.CheckNames(["Count"], declared));
        Assert.StartsWith("argument 'Count': expected NAME=VALUE", bare.Message, StringComparison.Ordinal);
        var value = Assert.Throws<LabUsageException>(() => ScriptArgs.Get<long>(["Count=abc"], "Count", 1));
        Assert.Equal("argument Count: 'abc' is not a Int64", value.Message);
    }

    /// <summary>
    /// NuGet caches a package by id and version: the LabNotebooks the apps were built with must be the packed one
    /// (scripts/pack-labkernel drops the cached copy when it repacks).
    /// </summary>
    private static void AssertRestoredIsPacked()
    {
        var cache = System.Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(cache, "labnotebooks", Version, $"labnotebooks.{Version}.nupkg.sha512");
        Assert.True(File.Exists(cached), $"{cached} is missing after the build");
        var packed = Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(PackedLabNotebooks)));
        Assert.True(packed == File.ReadAllText(cached).Trim(),
            $"NuGet's cache holds another LabNotebooks {Version} than {PackedLabNotebooks}: run scripts/pack-labkernel (it drops the cached copy)");
    }

    [GeneratedRegex(@"^\d\d-[\w-]+\.cs$")]
    private static partial Regex AppName();
}
