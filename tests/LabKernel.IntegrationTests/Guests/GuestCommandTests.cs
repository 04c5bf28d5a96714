using LabKernel.Processes;
using LabKernel.Tests.Runner;

namespace LabKernel.IntegrationTests.Guests;

/// <summary>
/// `lab guest exec` as a researcher types it, as a process of its own: the command's exit code is lab's, and a command
/// the guest cannot run is one line naming it, not a stack trace (System.CommandLine's default handler printed one).
/// </summary>
public sealed class GuestCommandTests
{
    private static Task<ProcessResult> LabAsync(params string[] args) => RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(5), args);

    [Fact]
    public async Task Given_a_command_that_exits_3_When_run_by_lab_guest_exec_Then_lab_exits_3_with_its_output()
    {
        var r = await LabAsync("guest", "exec", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3");

        Assert.True(r.ExitCode == 3, $"exit {r.ExitCode}: {r.StandardError}");
        Assert.Equal("out\n", r.StandardOutput);
        Assert.EndsWith("err\n", r.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_program_the_guest_does_not_have_When_run_by_lab_guest_exec_Then_one_line_names_it_and_lab_exits_1()
    {
        var r = await LabAsync("guest", "exec", "--", "sleep 20");

        Assert.Equal(1, r.ExitCode);
        var lines = r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // The boot line, then the error: no "Unhandled exception", no "   at ..." frames.
        Assert.StartsWith("lab: guest up in ", lines[0], StringComparison.Ordinal);
        var error = Assert.Single(lines[1..]);
        Assert.StartsWith("lab: guest agent guest-exec failed: ", error, StringComparison.Ordinal);
        Assert.Contains("sleep 20", error, StringComparison.Ordinal);
    }
}
