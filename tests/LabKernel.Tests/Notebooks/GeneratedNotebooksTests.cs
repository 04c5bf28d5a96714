using LabKernel.Processes;

namespace LabKernel.Tests.Notebooks;

public sealed class GeneratedNotebooksTests
{
    [Fact]
    public async Task Given_the_notebook_sources_When_checked_Then_every_ipynb_and_csx_twin_is_up_to_date()
    {
        var root = LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot;
        var r = await ProcessRunner.RunAsync("python3", [Path.Combine(root, "tools", "make-notebooks"), "--check"], new ProcessOptions { Check = false });
        Assert.True(r.Succeeded, r.StandardError);
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
