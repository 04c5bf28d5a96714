using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// `lab` is also a .NET local tool: src/LabRunner/LabRunner.csproj packs it (PackageId, ToolCommandName, the version
/// of Directory.Build.props) and .config/dotnet-tools.json names it, so that `dotnet tool restore` then
/// `dotnet lab ...` work in a clone. Nothing but these checks ties the two files together: a renamed id or command, or
/// a version bumped on one side only, would make `dotnet tool restore` fail or `dotnet lab` unknown. scripts/setup
/// names the tool's id too (it restores the other tools without it, since the package exists only once packed).
/// </summary>
public sealed partial class ToolManifestTests
{
    private static XElement Property(XDocument project, string name) =>
        project.Descendants(name).SingleOrDefault()
        ?? throw new Xunit.Sdk.XunitException($"<{name}> is missing");

    private static XDocument Csproj => XDocument.Load(Path.Combine(RepoRoot, "src", "LabRunner", "LabRunner.csproj"));

    private static string PropsVersion =>
        Property(XDocument.Load(Path.Combine(RepoRoot, "Directory.Build.props")), "Version").Value.Trim();

    private static JsonObject ManifestTools =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot, ".config", "dotnet-tools.json")))!["tools"]!.AsObject();

    [GeneratedRegex("""^lab_tool=(?<id>\S+)\s*$""", RegexOptions.Multiline)]
    private static partial Regex SetupToolId();

    [Fact]
    public void Given_the_runner_project_When_read_Then_it_packs_as_the_tool_lab_with_the_repositorys_version()
    {
        var project = Csproj;

        Assert.Equal("true", Property(project, "PackAsTool").Value.Trim(), ignoreCase: true);
        Assert.Equal("lab", Property(project, "ToolCommandName").Value.Trim());
        Assert.Equal("lab", Property(project, "AssemblyName").Value.Trim());
        // The version comes from Directory.Build.props, as for LabKernel and LabNotebooks; the manifest pins it.
        Assert.Empty(project.Descendants("Version"));
        Assert.Empty(project.Descendants("PackageVersion"));
        Assert.DoesNotContain(project.Descendants("IsPackable"), e => e.Value.Trim().Equals("false", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Given_the_tool_manifest_When_compared_with_the_runner_project_Then_id_command_and_version_agree()
    {
        var project = Csproj;
        var id = Property(project, "PackageId").Value.Trim();
        var command = Property(project, "ToolCommandName").Value.Trim();

        // The manifest keys tools by their package id, lower-cased as `dotnet tool install --local` writes it.
        var tool = ManifestTools[id.ToLowerInvariant()]?.AsObject();

        Assert.True(tool is not null, $".config/dotnet-tools.json has no entry \"{id.ToLowerInvariant()}\" for the PackageId {id}");
        Assert.Equal(PropsVersion, tool["version"]?.GetValue<string>());
        Assert.Equal([command], tool["commands"]!.AsArray().Select(c => c!.GetValue<string>()));
    }

    [Fact]
    public void Given_scripts_setup_When_read_Then_the_tool_it_restores_apart_is_the_manifests_lab_tool()
    {
        var setup = File.ReadAllText(Path.Combine(RepoRoot, "scripts", "setup"));
        var id = Property(Csproj, "PackageId").Value.Trim().ToLowerInvariant();

        var m = SetupToolId().Match(setup);

        Assert.True(m.Success, "scripts/setup has no lab_tool= line");
        Assert.Equal(id, m.Groups["id"].Value);
        Assert.True(ManifestTools.ContainsKey(m.Groups["id"].Value));
    }
}
