using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Host;

/// <summary>The one guard between the lab and files it did not create.</summary>
public sealed class LabFilesTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-files-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Given_a_file_the_lab_did_not_create_When_an_operation_asks_to_modify_it_Then_it_is_refused_with_a_one_line_error_naming_it()
    {
        var foreign = Path.Combine(_folder, "data-golden.raw");
        File.WriteAllText(foreign, "researcher's data");

        var e = Assert.Throws<ForeignImageException>(() => LabFiles.EnsureMayModify(foreign, "commit vdb into its backing file"));

        Assert.Contains(foreign, e.Message, StringComparison.Ordinal);
        Assert.Contains("commit vdb into its backing file", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(LabFiles.DeleteIfLabMade(foreign));
        Assert.Equal("researcher's data", File.ReadAllText(foreign));
    }

    [Fact]
    public void Given_a_file_the_caller_named_explicitly_When_asked_Then_it_may_be_modified()
    {
        var foreign = Path.Combine(_folder, "named.qcow2");
        File.WriteAllText(foreign, "x");
        LabFiles.EnsureMayModify(foreign, "commit into it", namedByCaller: true);
    }

    [Fact]
    public void Given_a_file_the_lab_created_When_deleted_through_the_guard_Then_it_goes_and_a_new_file_of_that_name_is_no_longer_the_labs()
    {
        var mine = Path.Combine(_folder, "overlay.qcow2");
        LabFiles.MarkCreated(mine);
        File.WriteAllText(mine, "lab");

        Assert.True(LabFiles.DeleteIfLabMade(mine));
        Assert.False(File.Exists(mine));
        File.WriteAllText(mine, "someone else's now");
        Assert.False(LabFiles.IsLabMade(mine));
    }

    [Fact]
    public void Given_a_run_folder_When_files_are_made_inside_it_Then_they_are_the_labs_but_its_neighbours_are_not()
    {
        var run = ExperimentRun.Create("guard-test", outputFolder: _folder);
        Assert.True(LabFiles.IsLabMade(Path.Combine(run.Folder, "anything.qcow2")));
        Assert.False(LabFiles.IsLabMade(Path.Combine(_folder, "beside-the-run.qcow2")));
        // A folder whose name merely starts like the run folder's is not inside it.
        Assert.False(LabFiles.IsLabMade(run.Folder + "-other/x.qcow2"));
    }

    [Fact]
    public async Task Given_an_existing_file_the_lab_did_not_create_When_qemu_img_create_is_asked_to_make_it_Then_it_is_refused_and_left_as_it_was()
    {
        var existing = Path.Combine(_folder, "root-overlay.qcow2");
        File.WriteAllText(existing, "not an overlay of the lab's");

        await Assert.ThrowsAsync<OverlayExistsException>(() => QemuImg.Local.CreateAsync(existing, "qcow2", 1 << 20));

        Assert.Equal("not an overlay of the lab's", File.ReadAllText(existing));
    }

    [Theory]
    [InlineData("qemu:///system", true)]
    [InlineData("qemu+ssh://root@127.0.0.1:2299/system", true)]
    [InlineData("qemu+ssh://localhost/system", true)]
    [InlineData("qemu+tcp://[::1]/system", true)]
    [InlineData("qemu+ssh://root@hypervisor-7.example.org/system", false)]
    [InlineData("qemu+tls://10.1.2.3/system", false)]
    public void Given_a_libvirt_URI_When_asked_whether_its_images_are_on_this_machine_Then_only_local_and_loopback_hosts_are(string uri, bool local)
    {
        Assert.Equal(local, LibvirtConnection.IsThisHost(uri));
        if (!local)
        {
            var e = Assert.Throws<LabUsageException>(() => LibvirtConnection.RequireThisHost(uri, "delete the lab's overlays"));
            Assert.StartsWith($"{uri} is another host: the lab cannot delete the lab's overlays there", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
        }
    }
}
