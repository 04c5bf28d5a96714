using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// A .csx's <c>#r "nuget: ..."</c> and <c>#i</c> lines: read by the runner, restored by .NET Interactive's package
/// manager (LabRunner.Interactive.ScriptPackages, as the notebook kernel restores them).
/// </summary>
public sealed class ScriptPackagesTests
{
    [Theory]
    [InlineData("#r \"nuget: Newtonsoft.Json, 13.0.3\"", "Newtonsoft.Json", "13.0.3")]
    [InlineData("  #r \"nuget:Spectre.Console,0.49.1\"  ", "Spectre.Console", "0.49.1")]
    [InlineData("#r \"nuget: Humanizer\"", "Humanizer", null)]
    public void Given_a_nuget_directive_When_parsed_Then_it_gives_the_package_and_version(string line, string id, string? version)
    {
        Assert.True(Directives.TryParseNuGetReference(line, out var package));
        Assert.Equal(new PackageReference(id, version), package);
    }

    [Fact]
    public void Given_i_lines_and_magic_commands_When_preprocessed_Then_they_are_blanked_and_line_numbers_kept()
    {
        var (code, sources) = Directives.Preprocess("#!csharp\n#i \"nuget: ../feed\"\n#r \"nuget: A, 1.0\"\nvar x = 1;");

        Assert.Equal("\n\n#r \"nuget: A, 1.0\"\nvar x = 1;", code);
        Assert.Equal(["../feed"], sources);
    }

    [Fact]
    public async Task Given_a_csx_with_a_relative_i_feed_When_run_Then_the_package_manager_restores_the_package_and_the_script_uses_it()
    {
        // A local feed holding one real package, copied from the machine's NuGet cache, named relative to the script.
        var cached = Directory.GetFiles(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "newtonsoft.json"), "*.nupkg", SearchOption.AllDirectories).First();
        var version = Path.GetFileName(Path.GetDirectoryName(cached))!;
        using var scratch = TempDir("csx-nuget");
        var dir = scratch.Path;
        Directory.CreateDirectory(Path.Combine(dir, "feed"));
        File.Copy(cached, Path.Combine(dir, "feed", Path.GetFileName(cached)));
        var input = Path.Combine(dir, "restore.csx");
        await File.WriteAllTextAsync(input, $"#i \"nuget: feed\"\n#r \"nuget: Newtonsoft.Json, {version}\"\nusing Newtonsoft.Json;\nConsole.WriteLine(JsonConvert.SerializeObject(new {{ a = 1 }}));\nreturn 5;\n");
        var output = Path.Combine(dir, "out.ipynb");

        Assert.Equal(5, await Lab("run", input, output, "--no-progress"));

        var outputs = Cells(ReadJson(output)).Single()["outputs"]!.AsArray();
        Assert.Equal("{\"a\":1}\n", Text(outputs.Single(o => o!["name"]?.GetValue<string>() == "stdout")!["text"]));
    }

    [Fact]
    public async Task Given_a_csx_referencing_a_package_no_source_has_When_run_Then_the_cell_fails_naming_the_package_and_NuGets_error()
    {
        using var scratch = TempDir("csx-nuget-missing");
        var input = Path.Combine(scratch.Path, "missing.csx");
        await File.WriteAllTextAsync(input, "#r \"nuget: LabNotebooks.No.Such.Package, 1.0.0\"\nConsole.WriteLine(\"not run\");\n");
        var output = Path.Combine(scratch.Path, "out.ipynb");

        Assert.Equal(1, await Lab("run", input, output, "--no-progress"));

        // The code cell, beside the error banner and anchor cells the run adds.
        var error = Cells(ReadJson(output)).Single(c => c["cell_type"]!.GetValue<string>() == "code")["outputs"]!.AsArray().Single(o => o!["output_type"]!.GetValue<string>() == "error")!;
        Assert.Equal("PackageRestoreError", error["ename"]!.GetValue<string>());
        var value = error["evalue"]!.GetValue<string>();
        Assert.StartsWith("restoring LabNotebooks.No.Such.Package, 1.0.0 failed: ", value);
        Assert.Contains("NU1101", value);
        Assert.DoesNotContain('\n', value);
    }
}
