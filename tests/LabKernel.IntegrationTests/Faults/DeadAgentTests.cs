using System.Diagnostics;
using LabKernel.Guests;
using LabKernel.Images;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// The guest agent killed inside the guest (its respawn loop first, then qemu-ga, over SSH): each agent call ends at
/// its own time limit with an error naming the command, and the machine still shuts down (QMP quit once the agent
/// does not answer), leaving its disk clean. A guest of its own: the shared one needs its agent.
/// </summary>
public sealed class DeadAgentTests
{
    private const string KillAgent =
        "for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = qemu-ga ] && p=${d#/proc/}; done; " +
        "[ -n \"$p\" ] || { echo no qemu-ga; exit 3; }; " +
        "pp=$(awk '{print $4}' /proc/$p/stat); kill -9 $pp $p; echo killed $pp $p";

    [Fact]
    public async Task Given_the_agent_killed_inside_the_guest_When_it_is_called_Then_each_call_ends_at_its_limit_naming_the_command_and_the_machine_still_shuts_down()
    {
        await using var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { Name = "deadagent" });
        var machine = guest.Machine;
        await machine.Ssh!.WaitUntilReadyAsync(TimeSpan.FromSeconds(90));
        await machine.Agent.PingAsync();

        var killed = await machine.Ssh.ExecAsync(["sh", "-c", KillAgent]);
        Assert.True(killed.ExitCode == 0, killed.StandardOutput + killed.StandardError);

        var clock = Stopwatch.StartNew();
        var ping = await Assert.ThrowsAsync<LabTimeoutException>(() => machine.Agent.ExecuteAsync("guest-ping", timeout: TimeSpan.FromSeconds(3)));
        Assert.Contains("guest-ping", ping.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(10));

        // The next call first resynchronises the channel; that too ends at the limit, naming what it waited for.
        machine.Agent.CommandTimeout = TimeSpan.FromSeconds(3);
        clock.Restart();
        var exec = await Assert.ThrowsAsync<LabTimeoutException>(() => machine.Agent.ExecAsync(["true"]));
        Assert.Contains("guest-sync-delimited", exec.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(10));

        // The guest itself still runs (SSH answers); shutting down falls back from the agent to QMP quit.
        Assert.Equal(0, (await machine.Ssh.ExecAsync(["true"])).ExitCode);
        clock.Restart();
        var how = await machine.ShutdownAsync();
        Assert.Equal(LabKernel.Machines.ShutdownOutcome.QmpQuit, how);
        Assert.True(machine.HasExited);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"shut down after {clock.Elapsed}");
        var check = await QemuImg.Local.CheckAsync(guest.RootDisk);
        Assert.True(check.IsClean, check.Summary);
    }
}
