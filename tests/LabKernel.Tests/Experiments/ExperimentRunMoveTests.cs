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

    /// <summary>
    /// 03 moves a base layer onto a scratch filesystem; a kept run moves it back out when unmounting, and the overlay
    /// that names it must follow both moves, or the kept chain would not open (qemu-img check refuses it).
    /// </summary>
    [Fact]
    public async Task Given_a_kept_run_whose_base_moved_onto_a_scratch_filesystem_When_cleaned_up_Then_the_overlay_above_names_the_bases_kept_place_and_checks_clean()
    {
        var output = Directory.CreateTempSubdirectory("run-move-").FullName;
        try
        {
            var run = ExperimentRun.Create("03-x", keepArtifacts: true, outputFolder: output);
            var vmBase = run.NewFile("vm-base", "vm-base.qcow2");
            var disk = run.NewFile("disk", "disk.qcow2");
            await LabKernel.Images.QemuImg.Local.CreateAsync(vmBase, "qcow2", 1 << 20);
            await LabKernel.Images.QemuImg.Local.CreateAsync(disk, "qcow2", options: new LabKernel.Images.CreateOptions { BackingFile = vmBase, BackingFormat = "qcow2" });
            var (scratch, why) = await run.TryMountScratchFilesystemAsync("other-fs", 16 << 20);
            Assert.True(scratch is not null, why);
            var moved = await run.MoveIntoAsync("other-fs", vmBase, "vm-base-moved");
            await LabKernel.Images.QemuImg.Local.RebaseAsync(disk, moved, new LabKernel.Images.RebaseOptions { Unsafe = true, BackingFormat = "qcow2" });

            await run.CleanUpAsync();

            var kept = Path.Combine(run.Folder, "other-fs.kept", "vm-base.qcow2");
            Assert.True(File.Exists(kept));
            Assert.Equal(kept, (await LabKernel.Images.QemuImg.Local.InfoAsync(disk)).FullBackingFilename);
            Assert.True((await LabKernel.Images.QemuImg.Local.CheckAsync(disk)).IsClean);
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }
}
