using LabKernel.Processes;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Architecture;

/// <summary>
/// A user-level NuGet source that no longer exists (a moved clone's artifacts/packages) broke a build once. The
/// repository's nuget.config clears user-level sources, so inside the clone only its own two sources count; outside
/// it, the same user configuration still lists the stale one (the control).
/// </summary>
public sealed class NuGetSourcesTests
{
    private const string Stale = "/nonexistent/moved-clone/artifacts/packages";

    private static async Task<string> SourcesAsync(string folder, string home)
    {
        var r = await ProcessRunner.RunAsync("dotnet", ["nuget", "list", "source", "--format", "short"], new ProcessOptions
        {
            WorkingDirectory = folder,
            Timeout = TimeSpan.FromMinutes(2),
            Environment = new Dictionary<string, string?>
            {
                ["HOME"] = home, ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
            },
        });
        return r.StandardOutput;
    }

    [Fact]
    public async Task Given_a_stale_user_level_source_When_sources_are_resolved_in_the_clone_Then_only_the_repositorys_own_are_used()
    {
        using var home = TempDir("nuget-home");
        var userConfig = Path.Combine(home.Path, ".nuget", "NuGet", "NuGet.Config");
        Directory.CreateDirectory(Path.GetDirectoryName(userConfig)!);
        await File.WriteAllTextAsync(userConfig,
            $"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration><packageSources><add key=\"stale-clone\" value=\"{Stale}\" /></packageSources></configuration>\n");
        using var outside = TempDir("nuget-outside");

        var inClone = await SourcesAsync(RepoRoot, home.Path);
        var elsewhere = await SourcesAsync(outside.Path, home.Path);

        Assert.DoesNotContain(Stale, inClone, StringComparison.Ordinal);
        Assert.Contains("https://api.nuget.org/v3/index.json", inClone, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(RepoRoot, "artifacts", "packages"), inClone, StringComparison.Ordinal);
        Assert.Contains(Stale, elsewhere, StringComparison.Ordinal);
    }
}
