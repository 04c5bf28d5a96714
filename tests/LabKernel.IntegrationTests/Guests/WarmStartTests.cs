using LabKernel.Machines;
using System.Security.Cryptography;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Guests;

/// <summary>
/// Warm starts of the embedded guest (saved VM states, <see cref="WarmStates"/>) on real QEMU. Each test uses a
/// configuration of its own (a unique SMBIOS serial in the key), so it starts with no state and leaves none.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideB)]
public sealed class WarmStartTests(ITestOutputHelper output)
{
    private static EmbeddedGuestOptions Options(string tag) => new()
    {
        Name = $"warm-{tag}",
        // Part of the key: a configuration no other test or notebook uses.
        ExtraArguments = ["-smbios", $"type=1,serial=lab-warm-test-{tag}-{Guid.NewGuid():N}"],
    };

    private static async Task<string> ReadAsync(EmbeddedGuest g, string command) =>
        (await g.Machine.Agent.OutputAsync(["/bin/sh", "-c", command], TimeSpan.FromSeconds(60))).Trim();

    private static async Task<double> UptimeAsync(EmbeddedGuest g) =>
        double.Parse((await ReadAsync(g, "cut -d' ' -f1 /proc/uptime")), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Given_a_first_cold_boot_Then_a_state_is_saved_and_later_starts_restore_it_not_booting_with_a_set_clock_and_fresh_entropy()
    {
        var options = Options("restore");
        string? stateFolder = null;
        try
        {
            await using (var cold = await EmbeddedGuest.StartAsync(options))
            {
                var since = System.Diagnostics.Stopwatch.StartNew();
                output.WriteLine($"1: {cold.Start}; agent after {cold.Machine.BootToAgent?.TotalSeconds:0.00} s");
                Assert.False(cold.Start.Warm);
                Assert.StartsWith("no saved state for this configuration yet: saved one for the next start", cold.Start.Why, StringComparison.Ordinal);
                // A boot: the guest init's lines on the console, and an uptime within the QEMU process's age.
                Assert.Contains("lab-init: qemu-ga on", cold.Machine.ReadConsole(), StringComparison.Ordinal);
                Assert.True(await UptimeAsync(cold) < (cold.Machine.BootToAgent!.Value + since.Elapsed).TotalSeconds + 0.5);
                // Written after the save: must not be in the state's layer, so not in the next guest.
                await ReadAsync(cold, "echo after-save > /root/after-save.txt && sync");
            }

            var randoms = new List<string>();
            for (var i = 2; i <= 3; i++)
            {
                await using var warm = await EmbeddedGuest.StartAsync(options);
                var since = System.Diagnostics.Stopwatch.StartNew();
                output.WriteLine($"{i}: {warm.Start}; agent after {warm.Machine.BootToAgent?.TotalSeconds:0.00} s");
                Assert.True(warm.Start.Warm, warm.Start.Why);
                stateFolder = warm.Start.State;
                // Not a boot: no line of the guest's init on this QEMU's console, and the guest has been up longer than its QEMU
                // process has existed (its clock goes on from the saved boot), which no boot can do.
                Assert.DoesNotContain("lab-init: qemu-ga on", warm.Machine.ReadConsole(), StringComparison.Ordinal);
                var uptime = await UptimeAsync(warm);
                var age = (warm.Machine.BootToAgent!.Value + since.Elapsed).TotalSeconds;
                output.WriteLine($"   uptime {uptime:0.00} s, QEMU up about {age:0.00} s");
                Assert.True(uptime > age + 1, $"guest uptime {uptime:0.00} s, but its QEMU started only about {age:0.00} s ago: a restore goes on from the saved boot");
                Assert.Equal("absent", await ReadAsync(warm, "test -e /root/after-save.txt && echo present || echo absent"));
                var guestClock = double.Parse(await ReadAsync(warm, "date +%s.%N"), System.Globalization.CultureInfo.InvariantCulture);
                var skew = Math.Abs(guestClock - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
                Assert.True(skew < 5, $"guest clock {skew:0.0} s from the host's after the restore");
                randoms.Add(await ReadAsync(warm, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'"));
                // The guest works: it writes and reads its disk.
                Assert.Equal("ok", await ReadAsync(warm, "echo ok > /root/w.txt && sync && cat /root/w.txt"));
            }
            // Two guests restored from one state must not produce the same "random" bytes.
            Assert.NotEqual(randoms[0], randoms[1]);
        }
        finally
        {
            if (stateFolder is not null)
            {
                LabKernel.Host.LabPaths.TryDeleteFolder(stateFolder);
            }
        }
    }

    /// <summary>
    /// A data disk (notebook 04's) is part of a state as a blank disk of its size: a start with a new blank one
    /// restores, and the guest sees it and can write it; a data disk that holds data starts cold, saying why, since
    /// the saved guest never saw that data.
    /// </summary>
    [Fact]
    public async Task Given_a_blank_data_disk_Then_the_start_is_warm_and_the_guest_uses_it_and_a_written_one_starts_cold()
    {
        var folder = Directory.CreateTempSubdirectory("lab-warm-data-").FullName;
        string? stateFolder = null;
        try
        {
            async Task<DriveSpec> BlankAsync(string name)
            {
                var file = Path.Combine(folder, name + ".qcow2");
                await LabKernel.Images.QemuImg.Local.CreateAsync(file, "qcow2", 64L * 1024 * 1024);
                return new DriveSpec(file, "data0");
            }
            var options = Options("data") with { ExtraDrives = [await BlankAsync("d1")] };
            await using (var first = await EmbeddedGuest.StartAsync(options))
            {
                output.WriteLine($"1: {first.Start}");
                Assert.False(first.Start.Warm);
                Assert.Contains("saved one for the next start", first.Start.Why, StringComparison.Ordinal);
                stateFolder = first.Start.State;
            }
            await using (var warm = await EmbeddedGuest.StartAsync(options with { ExtraDrives = [await BlankAsync("d2")] }))
            {
                output.WriteLine($"2: {warm.Start}");
                Assert.True(warm.Start.Warm, warm.Start.Why);
                // The guest sees a 64 MiB disk besides its root, makes a filesystem on it and writes a file.
                Assert.Equal("67108864", await ReadAsync(warm, "blockdev --getsize64 /dev/vdb"));
                Assert.Equal("ok", await ReadAsync(warm, "mkfs.ext4 -q /dev/vdb && mkdir -p /mnt/d && mount /dev/vdb /mnt/d && echo ok > /mnt/d/f && sync && cat /mnt/d/f"));
            }
            // d2 now holds a filesystem the saved guest never saw: restoring over it would be a corrupt guest.
            await using (var cold = await EmbeddedGuest.StartAsync(options with { ExtraDrives = [new DriveSpec(Path.Combine(folder, "d2.qcow2"), "data0")] }))
            {
                output.WriteLine($"3: {cold.Start}");
                Assert.False(cold.Start.Warm);
                Assert.Contains("holds data (saved states cover blank data disks only)", cold.Start.Why, StringComparison.Ordinal);
                Assert.Equal("ok", await ReadAsync(cold, "mkdir -p /mnt/d && mount /dev/vdb /mnt/d && cat /mnt/d/f"));
            }
        }
        finally
        {
            if (stateFolder is not null)
            {
                LabKernel.Host.LabPaths.TryDeleteFolder(stateFolder);
            }
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_a_saved_state_whose_disk_layer_changed_or_whose_state_file_is_garbage_Then_the_start_is_cold_says_why_and_saves_anew()
    {
        var options = Options("faults");
        string? stateFolder = null;
        try
        {
            await using (var first = await EmbeddedGuest.StartAsync(options))
            {
                Assert.False(first.Start.Warm);
                stateFolder = first.Start.State;
            }
            await using (var warm = await EmbeddedGuest.StartAsync(options))
            {
                Assert.True(warm.Start.Warm, warm.Start.Why);
                stateFolder = warm.Start.State!;
            }
            var layer = Path.Combine(stateFolder, "root.qcow2");
            var state = Path.Combine(stateFolder, "state.bin");

            // One byte of the saved layer changed: restoring over it would corrupt the guest, so the start is cold.
            File.SetUnixFileMode(layer, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await using (var fs = new FileStream(layer, FileMode.Open, FileAccess.ReadWrite))
            {
                fs.Seek(-1, SeekOrigin.End);
                var b = fs.ReadByte();
                fs.Seek(-1, SeekOrigin.End);
                fs.WriteByte((byte)(b ^ 0xff));
            }
            await using (var cold = await EmbeddedGuest.StartAsync(options))
            {
                output.WriteLine($"layer changed: {cold.Start}");
                Assert.False(cold.Start.Warm);
                Assert.Contains("changed since the state was saved", cold.Start.Why, StringComparison.Ordinal);
                Assert.Contains("saved one for the next start", cold.Start.Why, StringComparison.Ordinal);
            }

            // A state file of the right size but not a VM state: loading fails, it is discarded, the guest boots.
            var size = new FileInfo(state).Length;
            await File.WriteAllBytesAsync(state, RandomNumberGenerator.GetBytes((int)Math.Min(size, 1 << 20)));
            await using (var s = new FileStream(state, FileMode.Open, FileAccess.Write))
            {
                s.SetLength(size);
            }
            await using (var cold = await EmbeddedGuest.StartAsync(options))
            {
                output.WriteLine($"garbage state: {cold.Start}");
                Assert.False(cold.Start.Warm);
                Assert.Contains("loading the saved state failed", cold.Start.Why, StringComparison.Ordinal);
                Assert.Equal("ok", await ReadAsync(cold, "echo ok"));
            }
            await using (var again = await EmbeddedGuest.StartAsync(options))
            {
                Assert.True(again.Start.Warm, again.Start.Why);
            }

            // Off for a start: cold, saying why.
            await using (var off = await EmbeddedGuest.StartAsync(options with { Warm = false }))
            {
                Assert.Equal(new GuestStart(false, "warm starts are off for this start"), off.Start);
            }
        }
        finally
        {
            if (stateFolder is not null)
            {
                LabKernel.Host.LabPaths.TryDeleteFolder(stateFolder);
            }
        }
    }
}
