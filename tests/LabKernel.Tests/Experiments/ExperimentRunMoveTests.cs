using LabKernel.Experiments;
using LabKernel.Host;

namespace LabKernel.Tests.Experiments;

public sealed class ExperimentRunMoveTests
{
    [Fact]
    public async Task Given_a_lab_made_file_When_moved_into_a_subfolder_Then_it_is_registered_there_and_clean_up_removes_it_the_folder_and_the_run()
    {
        var output = Directory.CreateTempSubdirectory("run-move-").FullName;
        try
        {
            var run = ExperimentRun.Create("03-x", outputFolder: output);
            var image = run.NewFile("vm-base", "vm-base.qcow2");
            await File.WriteAllTextAsync(image, "layer");

            var moved = await run.MoveIntoAsync("moved", image, "vm-base-moved");

            Assert.Equal(Path.Combine(run.Folder, "moved", "vm-base.qcow2"), moved);
            Assert.False(File.Exists(image));
            Assert.Equal("layer", await File.ReadAllTextAsync(moved));
            Assert.Equal(moved, run.PathOf("vm-base-moved"));
            await run.CleanUpAsync();
            Assert.False(Directory.Exists(run.Folder));
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }

    [Fact]
    public async Task Given_a_file_the_lab_did_not_make_When_moved_Then_it_is_refused_and_stays()
    {
        var output = Directory.CreateTempSubdirectory("run-move-").FullName;
        var foreign = Path.Combine(Directory.CreateTempSubdirectory("foreign-").FullName, "mine.qcow2");
        try
        {
            File.WriteAllText(foreign, "yours");
            var run = ExperimentRun.Create("03-x", outputFolder: output);

            await Assert.ThrowsAsync<ForeignImageException>(() => run.MoveIntoAsync("moved", foreign, "stolen"));
            Assert.True(File.Exists(foreign));
        }
        finally
        {
            Directory.Delete(output, true);
            Directory.Delete(Path.GetDirectoryName(foreign)!, true);
        }
    }
}
