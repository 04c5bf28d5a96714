using LabKernel.Backends;
using LabKernel.Machines;

namespace LabKernel.Tests.Guests;

/// <summary>
/// Options are checked when a guest is started, before anything is made: a value out of range is one line naming the
/// option (its type and member), never an exception from deep inside QEMU or libvirt.
/// </summary>
public sealed class OptionValidationTests
{
    [Theory]
    [InlineData(0, 1, 60, "MachineOptions.MemoryMiB must be from 128 to 1048576, not 0")]
    [InlineData(1024, 0, 60, "MachineOptions.Cpus must be from 1 to 64, not 0")]
    [InlineData(1024, 65, 60, "MachineOptions.Cpus must be from 1 to 64, not 65")]
    [InlineData(1024, 1, 0, "MachineOptions.AgentTimeout must be a positive time, not 00:00:00")]
    public async Task A_machine_option_out_of_range_is_refused_before_QEMU_starts(int memory, int cpus, int agentSeconds, string expected)
    {
        var runtime = Path.Combine(Path.GetTempPath(), $"lab-options-{Guid.NewGuid():N}");
        var options = new MachineOptions
        {
            Drives = [new DriveSpec("/nonexistent/disk.qcow2")],
            MemoryMiB = memory,
            Cpus = cpus,
            AgentTimeout = TimeSpan.FromSeconds(agentSeconds),
            RuntimeFolder = runtime,
        };
        var e = await Assert.ThrowsAsync<LabUsageException>(() => QemuMachine.StartAsync(options));
        Assert.Equal(expected, e.Message);
        Assert.False(Directory.Exists(runtime));
    }

    [Fact]
    public async Task Machine_drives_must_exist_in_number_and_have_distinct_node_names()
    {
        var none = await Assert.ThrowsAsync<LabUsageException>(() => QemuMachine.StartAsync(new MachineOptions { Drives = [] }));
        Assert.Equal("MachineOptions.Drives: a machine needs at least one drive", none.Message);
        var twice = await Assert.ThrowsAsync<LabUsageException>(() => QemuMachine.StartAsync(new MachineOptions { Drives = [new DriveSpec("/a.qcow2", "d"), new DriveSpec("/b.qcow2", "d")] }));
        Assert.Equal("MachineOptions.Drives: node names must differ (d, d)", twice.Message);
        var clockless = await Assert.ThrowsAsync<LabUsageException>(() => QemuMachine.StartAsync(new MachineOptions { Drives = [new DriveSpec("/a.qcow2")], Time = null! }));
        Assert.Equal("MachineOptions.Time: give a clock (TimeProvider.System unless a test fakes one)", clockless.Message);
    }

    [Theory]
    [InlineData(64, 180, 120, "LabGuestOptions.MemoryMiB must be from 128 to 1048576, not 64")]
    [InlineData(1024, -1, 120, "LabGuestOptions.AgentTimeout must be a positive time, not -00:00:01")]
    [InlineData(1024, 180, 0, "LabGuestOptions.ShutdownTimeout must be a positive time, not 00:00:00")]
    public async Task A_guest_option_out_of_range_is_refused_before_its_work_folder_is_made(int memory, int agentSeconds, int shutdownSeconds, string expected)
    {
        var work = Path.Combine(Path.GetTempPath(), $"lab-options-{Guid.NewGuid():N}");
        var e = await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions
        {
            WorkFolder = work,
            Overlays = [Path.Combine(work, "overlay1.qcow2")],
            MemoryMiB = memory,
            AgentTimeout = TimeSpan.FromSeconds(agentSeconds),
            ShutdownTimeout = TimeSpan.FromSeconds(shutdownSeconds),
        }));
        Assert.Equal(expected, e.Message);
        Assert.False(Directory.Exists(work));
    }

    [Fact]
    public async Task A_guest_without_a_clock_is_refused_and_a_given_clock_reaches_its_machine()
    {
        var work = Path.Combine(Path.GetTempPath(), $"lab-options-{Guid.NewGuid():N}");
        var e = await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions
        {
            WorkFolder = work,
            Overlays = [Path.Combine(work, "overlay1.qcow2")],
            Time = null!,
        }));
        Assert.Equal("LabGuestOptions.Time: give a clock (TimeProvider.System unless a test fakes one)", e.Message);
        Assert.False(Directory.Exists(work));

        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var image = new LabKernel.Guests.GuestImage(Path.Combine(work, "img"), "recipe");
        Assert.Same(clock, LabKernel.Guests.EmbeddedGuest.MachineOptionsFor(image, new LabKernel.Guests.EmbeddedGuestOptions { Time = clock }, "/x/root.qcow2").Time);
    }
}
