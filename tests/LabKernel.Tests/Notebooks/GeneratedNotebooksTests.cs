using LabKernel.Processes;

namespace LabKernel.Tests.Notebooks;

public sealed class GeneratedNotebooksTests
{
    [Fact]
    public async Task Given_the_notebook_sources_When_checked_Then_every_ipynb_csx_twin_and_file_based_app_is_up_to_date()
    {
        var root = LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot;
        var r = await ProcessRunner.RunAsync("python3", [Path.Combine(root, "tools", "make-notebooks"), "--check"], new ProcessOptions { Check = false });
        Assert.True(r.Succeeded, r.StandardError);
    }

    [Fact]
    public void Given_the_notebook_sources_When_listed_Then_each_has_a_notebook_a_csx_twin_and_a_file_based_app()
    {
        var root = LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot;
        var names = Directory.GetFiles(Path.Combine(root, "notebooks", "src"), "*.dib").Select(f => Path.GetFileNameWithoutExtension(f)).Order().ToList();

        Assert.NotEmpty(names);
        foreach (var name in names)
        {
            Assert.True(File.Exists(Path.Combine(root, "notebooks", name + ".ipynb")), name + ".ipynb");
            Assert.True(File.Exists(Path.Combine(root, "scripts", name + ".csx")), name + ".csx");
            Assert.True(File.Exists(Path.Combine(root, "scripts", name + ".cs")), name + ".cs");
        }
        // No other NN-name.cs in scripts/: FileBasedAppsTests builds every one.
        var apps = Directory.GetFiles(Path.Combine(root, "scripts"), "*.cs").Select(f => Path.GetFileNameWithoutExtension(f)).Where(n => n.Length > 3 && char.IsAsciiDigit(n[0]) && char.IsAsciiDigit(n[1]) && n[2] == '-');
        Assert.Equal(names, apps.Order().ToList());
    }

    [Fact]
    public async Task Given_the_experiment_notebooks_When_validated_Then_nbformat_accepts_them()
    {
        var root = LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot;
        foreach (var nb in Directory.GetFiles(Path.Combine(root, "notebooks"), "*.ipynb"))
        {
            Assert.Null(await LabKernel.Tests.Runner.RunnerTestSupport.NbformatErrorAsync(nb));
        }
    }
}
