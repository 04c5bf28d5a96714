using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Machines;

namespace LabKernel.IntegrationTests.Guests;

[Collection(GuestCollection.Name)]
public sealed class GuestLifecycleTests(GuestFixture fixture)
{
    [Fact]
    public async Task Given_the_cached_image_When_a_second_guest_boots_and_shuts_down_Then_nothing_is_rebuilt_and_the_chain_checks_clean()
    {
        var image = fixture.Guest.Image;
        var recipeWritten = File.GetLastWriteTimeUtc(Path.Combine(image.Directory, "recipe.json"));
        var baseWritten = File.GetLastWriteTimeUtc(image.BaseImage);
        var work = Directory.CreateTempSubdirectory("lab-lifecycle").FullName;
        try
        {
            ShutdownOutcome ended;
            string root;
            await using (var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { WorkFolder = work, Name = "second" }))
            {
                Assert.Equal(image.Directory, guest.Image.Directory);
                Assert.NotNull(guest.Machine.BootToAgent);
                await guest.Machine.Agent.ShellAsync("seq 1 100000 > /root/data.txt", new() { Check = true });
                root = guest.RootDisk;
                ended = await guest.Machine.ShutdownAsync();
            }
            Assert.Equal(ShutdownOutcome.GuestPoweredOff, ended);
            Assert.Equal(recipeWritten, File.GetLastWriteTimeUtc(Path.Combine(image.Directory, "recipe.json")));
            Assert.Equal(baseWritten, File.GetLastWriteTimeUtc(image.BaseImage));
            var check = await QemuImg.Local.CheckAsync(root);
            Assert.True(check.IsClean, check.Summary);
            Assert.True(File.Exists(root), "a caller-given work folder is kept");
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Given_a_bad_QEMU_argument_When_starting_Then_the_error_carries_QEMU_stderr()
    {
        var work = Directory.CreateTempSubdirectory("lab-bad").FullName;
        try
        {
            var disk = Path.Combine(work, "d.qcow2");
            await QemuImg.Local.CreateAsync(disk, "qcow2", 1 << 20);
            var ex = await Assert.ThrowsAsync<LabException>(() => QemuMachine.StartAsync(new MachineOptions
            {
                Drives = [new DriveSpec(disk)],
                GuestAgent = false,
                Network = false,
                ExtraArguments = ["-device", "no-such-device-model"],
            }));
            Assert.Contains("QEMU exited", ex.Message);
            Assert.Contains("no-such-device-model", ex.Message);
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Given_a_missing_disk_When_starting_Then_a_usage_error_names_it()
    {
        var ex = await Assert.ThrowsAsync<LabUsageException>(() => QemuMachine.StartAsync(new MachineOptions { Drives = [new DriveSpec("/nonexistent/x.qcow2")] }));
        Assert.Contains("/nonexistent/x.qcow2", ex.Message);
    }
}
