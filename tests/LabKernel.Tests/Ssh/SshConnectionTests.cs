using System.Diagnostics;
using LabKernel.Processes;
using LabKernel.Ssh;

namespace LabKernel.Tests.Ssh;

/// <summary>The command wrapping <see cref="SshHost"/> and <see cref="SshGuestShell"/> share: the session line, the command line, the kill command.</summary>
public sealed class SshConnectionTests
{
    [Theory]
    [InlineData("", "sleep 30", false, "echo \"lab-session $$\" >&2; exec sleep 30 </dev/null")]
    [InlineData("", "cat", true, "echo \"lab-session $$\" >&2; exec cat")]
    [InlineData("cd /tmp || exit 1; ", "env A=1 'a b'", false, "echo \"lab-session $$\" >&2; cd /tmp || exit 1; exec env A=1 'a b' </dev/null")]
    public void Given_a_command_When_wrapped_Then_the_session_id_comes_first_on_stderr_and_the_command_is_execed(string setup, string exec, bool hasInput, string expected)
    {
        Assert.Equal(expected, SshConnection.CommandLine(setup, exec, hasInput));
    }

    [Theory]
    [InlineData("lab-session 4242", 4242)]
    [InlineData("lab-session 4242\r", 4242)]
    [InlineData("lab-session 1", null)]
    [InlineData("lab-session 0", null)]
    [InlineData("lab-session -5", null)]
    [InlineData("lab-session 12 34", null)]
    [InlineData("lab-session ", null)]
    [InlineData("Welcome to the guest", null)]
    public void Given_a_first_stderr_line_When_read_Then_only_a_session_line_with_a_killable_id_gives_one(string line, int? expected)
    {
        Assert.Equal(expected, SshConnection.SessionId(line));
    }

    [Fact]
    public void Given_a_session_id_When_its_kill_command_is_made_Then_it_ends_that_process_group_TERM_then_KILL()
    {
        var argv = SshConnection.KillCommand(4242);

        Assert.Equal(["sh", "-c", SshConnection.KillScript, "sh", "4242"], argv);
        Assert.Contains("kill -s TERM -- -\"$1\"", SshConnection.KillScript);
        Assert.Contains("kill -s KILL -- -\"$1\"", SshConnection.KillScript);
        Assert.Equal("sh -c " + ShellQuote.Quote(SshConnection.KillScript) + " sh 4242", ShellQuote.Join(argv));
    }

    [Fact]
    public async Task Given_a_process_group_that_ignores_TERM_When_the_kill_command_runs_Then_the_whole_group_is_ended()
    {
        // The group sshd would make: a session leader (setsid) with a child, both deaf to TERM.
        using var leader = Process.Start(new ProcessStartInfo("setsid", ["sh", "-c", "trap '' TERM; sleep 30 & echo $$; wait"]) { RedirectStandardOutput = true })!;
        var pid = int.Parse((await leader.StandardOutput.ReadLineAsync())!, System.Globalization.CultureInfo.InvariantCulture);
        var sw = Stopwatch.StartNew();

        var argv = SshConnection.KillCommand(pid);
        var r = await ProcessRunner.RunAsync(argv[0], argv.Skip(1).ToList(), new ProcessOptions { Timeout = TimeSpan.FromSeconds(15) });

        Assert.Equal(0, r.ExitCode);
        await leader.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.9), $"KILL came after {sw.Elapsed}, not a second after TERM");
        Assert.False(ProcTable.GroupHasMembers(pid), $"process group {pid} still has members");
    }
}
