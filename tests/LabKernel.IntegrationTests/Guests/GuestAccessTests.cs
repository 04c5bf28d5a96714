using System.Security.Cryptography;
using LabKernel.GuestAgent;

namespace LabKernel.IntegrationTests.Guests;

[Collection(GuestCollection.Name)]
public sealed class GuestAccessTests(GuestFixture fixture)
{
    private GuestAgentClient Agent => fixture.Guest.Machine.Agent;

    public static TheoryData<string> Shells => new() { "agent", "ssh" };

    private IGuestShell Shell(string kind) => kind == "agent" ? Agent : fixture.Guest.Machine.Ssh!;

    [Theory]
    [MemberData(nameof(Shells))]
    public async Task Given_a_command_that_fails_When_run_in_the_guest_Then_exit_code_stdout_and_stderr_come_back(string kind)
    {
        var r = await Shell(kind).ExecAsync(["/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 42"]);
        Assert.Equal(42, r.ExitCode);
        Assert.Equal("to-out\n", r.StandardOutput);
        Assert.Equal("to-err\n", r.StandardError);
    }

    [Theory]
    [MemberData(nameof(Shells))]
    public async Task Given_arguments_with_spaces_and_quotes_When_run_without_a_shell_Then_they_arrive_unchanged(string kind)
    {
        string[] args = ["a b", "it's", "$HOME", "*", ""];
        var r = await Shell(kind).ExecAsync(["/usr/bin/printf", "[%s]", .. args], new GuestExecOptions { Check = true });
        Assert.Equal("[a b][it's][$HOME][*][]", r.StandardOutput);
    }

    /// <summary>
    /// The lab's guest boots with <c>no_timer_check</c> (see <see cref="LabKernel.Guests.GuestImage.KernelCommandLine"/>):
    /// the kernel it ran got the switch through QEMU's <c>-append</c>, so a saturated TCG host cannot make its boot
    /// panic in the IO-APIC timer check (seen once on a domain's console in a four-lane suite run).
    /// </summary>
    [Fact]
    public async Task Given_the_lab_guest_When_its_kernel_command_line_is_read_Then_it_skips_the_boot_timer_check_a_loaded_host_can_fail()
    {
        var cmdline = System.Text.Encoding.ASCII.GetString(await Agent.ReadFileAsync("/proc/cmdline")).Trim();
        Assert.Contains(" no_timer_check ", $" {cmdline} ");
    }

    [Fact]
    public async Task Given_the_agent_When_asked_for_info_Then_guest_exec_and_file_commands_are_enabled()
    {
        var info = await Agent.InfoAsync();
        Assert.StartsWith("7.", info.Version);
        Assert.Contains("guest-exec", info.EnabledCommands);
        Assert.Contains("guest-file-write", info.EnabledCommands);
        Assert.Contains("guest-fsfreeze-freeze", info.EnabledCommands);
    }

    [Fact]
    public async Task Given_5_MB_of_random_bytes_When_pushed_and_pulled_back_Then_the_checksums_match_on_both_sides()
    {
        var data = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 123);
        var expected = Convert.ToHexStringLower(SHA256.HashData(data));
        await Agent.WriteFileAsync("/root/roundtrip.bin", data);
        Assert.Equal(expected, await Agent.Sha256Async("/root/roundtrip.bin"));
        var back = await Agent.ReadFileAsync("/root/roundtrip.bin");
        Assert.Equal(expected, Convert.ToHexStringLower(SHA256.HashData(back)));
        await Agent.ExecAsync(["rm", "-f", "/root/roundtrip.bin"], new GuestExecOptions { Check = true });
    }

    [Fact]
    public async Task Given_the_guest_over_SSH_When_a_file_goes_by_SFTP_and_commands_follow_Then_the_agent_sees_the_same_bytes_and_one_connection_serves_them()
    {
        var ssh = fixture.Guest.Machine.Ssh!;
        await ssh.ExecAsync(["true"], new GuestExecOptions { Check = true });
        var opened = ssh.ConnectionsOpened;
        var data = RandomNumberGenerator.GetBytes(1024 * 1024 + 7);
        await ssh.WriteFileAsync("/root/sftp-roundtrip.bin", data);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), await Agent.Sha256Async("/root/sftp-roundtrip.bin"));
        Assert.Equal(data, await ssh.ReadFileAsync("/root/sftp-roundtrip.bin"));
        for (var i = 0; i < 5; i++)
        {
            await ssh.ExecAsync(["true"], new GuestExecOptions { Check = true });
        }
        await ssh.ExecAsync(["rm", "-f", "/root/sftp-roundtrip.bin"], new GuestExecOptions { Check = true });
        // The commands reuse their connection; SFTP has its own (at most one more). The image's host key matched each time.
        Assert.InRange(ssh.ConnectionsOpened - opened, 0, 1);
    }

    [Fact]
    public async Task Given_a_running_guest_When_filesystems_are_frozen_and_thawed_Then_the_status_follows_and_writes_resume()
    {
        Assert.Equal(FsFreezeStatus.Thawed, await Agent.FreezeStatusAsync());
        var frozen = await Agent.FreezeAsync();
        try
        {
            Assert.True(frozen >= 1, $"froze {frozen} filesystems");
            Assert.Equal(FsFreezeStatus.Frozen, await Agent.FreezeStatusAsync());
        }
        finally
        {
            await Agent.ThawAsync();
        }
        Assert.Equal(FsFreezeStatus.Thawed, await Agent.FreezeStatusAsync());
        var r = await Agent.ShellAsync("echo after-thaw > /root/thaw.txt && sync && cat /root/thaw.txt", new GuestExecOptions { Check = true, Timeout = TimeSpan.FromSeconds(30) });
        Assert.Equal("after-thaw\n", r.StandardOutput);
    }

    [Fact]
    public async Task Given_a_slow_command_When_its_time_limit_passes_Then_the_error_names_the_command()
    {
        var ex = await Assert.ThrowsAsync<LabTimeoutException>(() =>
            Agent.ExecAsync(["sleep", "30"], new GuestExecOptions { Timeout = TimeSpan.FromMilliseconds(500) }));
        Assert.Contains("sleep 30", ex.Message);
        // The agent stays usable afterwards.
        await Agent.PingAsync();
    }

    [Fact]
    public async Task Given_an_orphaned_background_process_When_it_exits_Then_PID_1_reaps_it()
    {
        await Agent.ShellAsync("(sleep 0.2; exit 0) & echo started", new GuestExecOptions { Check = true });
        // A zombie would show as state Z; wait on the condition, not a fixed time.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string zombies;
        do
        {
            zombies = (await Agent.ShellAsync("ps -eo stat= | grep -c '^Z' || true")).StandardOutput.Trim();
        }
        while (zombies != "0" && DateTime.UtcNow < deadline);
        Assert.Equal("0", zombies);
    }

    [Fact]
    public async Task Given_the_machine_When_queried_over_QMP_Then_it_runs_on_named_block_nodes()
    {
        var status = await fixture.Guest.Machine.Qmp.ExecuteAsync("query-status");
        Assert.Equal("running", status!["status"]!.GetValue<string>());
        var nodes = (await fixture.Guest.Machine.Qmp.ExecuteAsync("query-named-block-nodes", new() { ["flat"] = true }))!.AsArray();
        Assert.Contains(nodes, n => n!["node-name"]!.GetValue<string>() == "disk0" && n["file"]!.GetValue<string>() == fixture.Guest.RootDisk);
        var hmp = await fixture.Guest.Machine.Qmp.HumanMonitorCommandAsync("info status");
        Assert.Contains("running", hmp);
    }

    [Fact]
    public async Task Given_512_KiB_written_without_sync_When_the_page_cache_is_read_Then_it_holds_all_of_it_exactly()
    {
        await Agent.ExecAsync(["/bin/sh", "-c", "sync; dd if=/dev/urandom of=/root/dirty.bin bs=64k count=8 status=none"], new GuestExecOptions { Check = true });
        try
        {
            // Folded per-CPU counters (stat_refresh): every page of the write is dirty or under writeback.
            var cache = await GuestPageCache.ReadAsync(Agent);
            Assert.True(cache.NotOnDiskBytes >= 512 * 1024, $"Dirty {cache.DirtyKiB} KiB + Writeback {cache.WritebackKiB} KiB");
        }
        finally
        {
            await Agent.ExecAsync(["/bin/rm", "-f", "/root/dirty.bin"]);
        }
    }

    private async Task<long> AvailableMiBAsync()
    {
        var meminfo = await Agent.OutputAsync(["/bin/cat", "/proc/meminfo"]);
        var line = meminfo.Split('\n').Single(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024;
    }

    [Fact]
    public async Task Given_memory_held_in_the_guest_When_asked_again_or_for_more_than_it_has_Then_it_holds_what_it_said_once_and_never_more_than_it_can_spare()
    {
        try
        {
            var before = await AvailableMiBAsync();
            Assert.Equal(64, await Backends.MemoryInUse.HoldAsync(Agent, 64));
            var after = await AvailableMiBAsync();
            Assert.True(before - after >= 56, $"MemAvailable fell by {before - after} MiB holding 64 MiB ({before} -> {after})");
            // Random bytes, not zeros QEMU would skip: the held file compresses to about its own size.
            var gz = await Agent.OutputAsync(["/bin/sh", "-c", $"head -c 4194304 {Backends.MemoryInUse.HeldFile} | gzip -1 | wc -c"]);
            Assert.True(long.Parse(gz.Trim(), System.Globalization.CultureInfo.InvariantCulture) > 4_000_000, $"4 MiB of the held data gzip to {gz.Trim()} bytes");
            // Held already since this boot: nothing more is written, whatever is asked.
            Assert.Equal(64, await Backends.MemoryInUse.HoldAsync(Agent, 512));

            await Agent.ShellAsync($"umount {Backends.MemoryInUse.Folder}", new GuestExecOptions { Check = true });
            var available = await AvailableMiBAsync();
            var held = await Backends.MemoryInUse.HoldAsync(Agent, 1 << 20);
            Assert.InRange(held, 4, Math.Min(available * Backends.MemoryInUse.AvailableQuarters / 4, available - Backends.MemoryInUse.ReserveMiB));
            await Assert.ThrowsAsync<LabUsageException>(() => Backends.MemoryInUse.HoldAsync(Agent, -1));
        }
        finally
        {
            await Agent.ShellAsync($"umount {Backends.MemoryInUse.Folder} 2>/dev/null; true");
        }
    }
}
