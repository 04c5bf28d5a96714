using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

public sealed class NuGetRestorerTests
{
    [Theory]
    [InlineData("/var/cache/me", "/home/me", "/var/cache/me/labnotebooks/nuget")]
    [InlineData(null, "/home/me", "/home/me/.cache/labnotebooks/nuget")]
    [InlineData("", "/home/me", "/home/me/.cache/labnotebooks/nuget")]
    [InlineData("relative/cache", "/home/me", "/home/me/.cache/labnotebooks/nuget")]
    public void The_cache_lives_under_XDG_CACHE_HOME_or_the_home_cache_folder(string? xdg, string home, string expected)
    {
        Assert.Equal(expected, NuGetRestorer.CacheRoot(xdg, home));
    }

    [Fact]
    public void Runtime_assemblies_of_every_package_come_from_the_assets_file()
    {
        var dir = Directory.CreateTempSubdirectory("lab-assets-");
        var assets = Path.Combine(dir.FullName, "project.assets.json");
        File.WriteAllText(assets, """
            {
              "version": 3,
              "targets": {
                "net10.0": {
                  "A/1.0.0": { "type": "package", "compile": { "ref/net8.0/A.dll": {} }, "runtime": { "lib/net8.0/A.dll": {}, "lib/net8.0/A.xml": {} } },
                  "B/2.0.0": { "type": "package", "runtime": { "lib/netstandard2.0/_._": {} } },
                  "Proj/1.0.0": { "type": "project" }
                }
              },
              "libraries": { "A/1.0.0": { "type": "package", "path": "a/1.0.0" }, "B/2.0.0": { "type": "package", "path": "b/2.0.0" } },
              "packageFolders": { "/pkgs/": {} }
            }
            """);

        var result = NuGetRestorer.ReadAssets(assets, "net10.0");

        Assert.Equal(["/pkgs/a/1.0.0/lib/net8.0/A.dll"], result);
        dir.Delete(recursive: true);
    }

    [Theory]
    [InlineData("#r \"nuget: Newtonsoft.Json, 13.0.3\"", "Newtonsoft.Json", "13.0.3")]
    [InlineData("  #r \"nuget:Spectre.Console,0.49.1\"  ", "Spectre.Console", "0.49.1")]
    [InlineData("#r \"nuget: Humanizer\"", "Humanizer", null)]
    public void NuGet_directives_parse_into_package_and_version(string line, string id, string? version)
    {
        Assert.True(Directives.TryParseNuGetReference(line, out var package));
        Assert.Equal(new PackageReference(id, version), package);
    }

    [Fact]
    public void Preprocessing_blanks_i_lines_and_magic_commands_but_keeps_line_numbers()
    {
        var (code, sources) = Directives.Preprocess("#!csharp\n#i \"nuget: ../feed\"\n#r \"nuget: A, 1.0\"\nvar x = 1;");

        Assert.Equal("\n\n#r \"nuget: A, 1.0\"\nvar x = 1;", code);
        Assert.Equal(["../feed"], sources);
    }
}
