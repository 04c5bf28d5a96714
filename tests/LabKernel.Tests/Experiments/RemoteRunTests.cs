using LabKernel.Experiments;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Ssh;
using LabKernel.Tests.Ssh;

namespace LabKernel.Tests.Experiments;

/// <summary>
/// A run whose images are on another host (an <see cref="SshHost"/> on a loopback sshd): its image folder is made
/// there, its files are made, moved, listed and deleted there, and clean-up removes that folder; nothing of it is
/// made in the local run folder.
/// </summary>
public sealed class RemoteRunTests(LoopbackSshd sshd) : IClassFixture<LoopbackSshd>
{
    [Fact]
    public async Task Given_a_run_on_an_ssh_host_When_images_are_made_moved_and_cleaned_up_Then_all_of_it_happens_in_its_folder_there()
    {
        await using var host = await SshHost.ConnectAsync(sshd.HostOptions());
        var parent = Directory.CreateTempSubdirectory("lab-remote-run-").FullName;
        var output = Directory.CreateTempSubdirectory("lab-remote-out-").FullName;
        try
        {
            var run = await ExperimentRun.CreateAsync("remote", host, outputFolder: output, hostFolder: parent);
            Assert.StartsWith(parent + "/remote-", run.ImageFolder, StringComparison.Ordinal);
            Assert.NotEqual(run.Folder, run.ImageFolder);
            var overlay = run.NewFile("overlay1", "overlay1.qcow2");
            Assert.Equal(Path.Combine(run.ImageFolder, "overlay1.qcow2"), overlay);
            // Names given out are not given again, though nothing is made yet.
            Assert.Throws<LabUsageException>(() => run.NewFile("again", "overlay1.qcow2"));
            await QemuImg.On(host).CreateAsync(overlay, "qcow2", 1 << 20);
            Assert.True(LabFiles.IsLabMade(overlay, host));
            // The same path is not the lab's on this machine: a host's files are marked for that host only.
            Assert.False(LabFiles.IsLabMade(Path.Combine(parent, "elsewhere.qcow2")));
            var moved = await run.MoveIntoAsync("moved", overlay, "overlay1-moved");
            Assert.True(await host.FileExistsAsync(moved));
            Assert.False(await host.FileExistsAsync(overlay));
            var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(await run.WriteManifestAsync()))!;
            Assert.Equal(host.Name, manifest["host"]!.GetValue<string>());
            Assert.Contains(manifest["artifacts"]!.AsArray(), a => a!["path"]!.GetValue<string>() == moved && a["exists"]!.GetValue<bool>());
            // Nothing but the manifest is in the local run folder.
            Assert.Equal(["artifacts.json"], Directory.GetFileSystemEntries(run.Folder).Select(Path.GetFileName));

            var summary = await run.CleanUpAsync();

            Assert.StartsWith("removed 1 files the lab created", summary, StringComparison.Ordinal);
            Assert.False(await host.DirectoryExistsAsync(run.ImageFolder));
            Assert.Empty(Directory.EnumerateFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task Given_a_host_folder_that_is_not_absolute_When_a_run_is_made_Then_a_one_line_usage_error_names_it_and_nothing_is_left_here()
    {
        await using var host = await SshHost.ConnectAsync(sshd.HostOptions());
        var output = Directory.CreateTempSubdirectory("lab-remote-out-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => ExperimentRun.CreateAsync("remote", host, outputFolder: output, hostFolder: "relative/images"));
            Assert.Equal($"HostFolder 'relative/images' is not an absolute path on {host.Name}", e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(output));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
