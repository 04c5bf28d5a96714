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
    [InlineData("qemu:///system", true, null)]
    [InlineData("qemu+tcp://[::1]/system", true, null)]
    // An SSH transport reaches the files where sshd is, loopback included (another container or namespace).
    [InlineData("qemu+ssh://root@127.0.0.1:2299/system", false, null)]
    [InlineData("qemu+ssh://localhost/system", false, null)]
    [InlineData("qemu+libssh2://root@hypervisor-7.example.org/system", false, null)]
    [InlineData("qemu+tls://10.1.2.3/system", false, "qemu+tls://10.1.2.3/system reaches libvirt on 10.1.2.3 without SSH, but the lab works on the domain's image files on that host")]
    public async Task Given_a_libvirt_URI_When_the_lab_needs_its_files_Then_they_are_here_only_without_SSH_to_this_machine_and_another_host_without_SSH_is_refused_in_one_line(string uri, bool local, string? refusal)
    {
        Assert.Equal(local, LabHosts.FilesAreLocal(uri));
        if (local)
        {
            Assert.Same(LocalHost.Instance, await LabHosts.ForLibvirtUriAsync(uri));
        }
        if (refusal is not null)
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => LabHosts.ForLibvirtUriAsync(uri));
            Assert.StartsWith(refusal, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
        }
    }
}
