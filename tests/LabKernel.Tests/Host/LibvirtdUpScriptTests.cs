using System.Diagnostics;
using System.Globalization;
using LabKernel.Processes;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Host;

/// <summary>
/// <c>scripts/libvirtd-up --stop-started</c> stops only the processes its record names, and only while
/// <c>/proc/PID/comm</c> still names the daemon recorded with it. No daemon here: two <c>sleep</c> processes of the
/// test's own stand in, one recorded under its own name, one under "libvirtd" (as a reused pid would be), and a pid
/// that no longer exists; the record points at a file of the test's (<c>LAB_LIBVIRTD_STATE</c>).
/// </summary>
public sealed class LibvirtdUpScriptTests
{
    private static Process Sleep() => Process.Start(new ProcessStartInfo("sleep", ["300"]))!;

    private static bool Alive(Process p) => File.Exists($"/proc/{p.Id}/status")
        && !File.ReadAllText($"/proc/{p.Id}/status").Contains("State:\tZ", StringComparison.Ordinal);

    [Fact]
    public async Task Given_a_record_of_started_daemons_When_stop_started_runs_Then_only_a_recorded_pid_still_running_that_program_is_stopped()
    {
        using var scratch = TempDir("libvirtd-up");
        var state = Path.Combine(scratch.Path, "started");
        using var recorded = Sleep();
        using var reused = Sleep();
        try
        {
            await File.WriteAllTextAsync(state, string.Create(CultureInfo.InvariantCulture,
                $"sleep {recorded.Id}\nlibvirtd {reused.Id}\nvirtlogd 2147483000\n\nvirtlogd\n"));

            var r = await ProcessRunner.RunAsync("bash", [Path.Combine(RepoRoot, "scripts", "libvirtd-up"), "--stop-started"], new ProcessOptions
            {
                Check = false,
                Timeout = TimeSpan.FromMinutes(1),
                Environment = new Dictionary<string, string?> { ["LAB_LIBVIRTD_STATE"] = state },
            });

            Assert.True(r.ExitCode == 0, r.StandardError);
            Assert.Equal($"libvirtd-up: stopped sleep (pid {recorded.Id})\n", r.StandardOutput);
            Assert.True(recorded.WaitForExit(TimeSpan.FromSeconds(10)), "the recorded process was not stopped");
            Assert.True(Alive(reused), "a pid recorded under another program's name was stopped");
            Assert.False(File.Exists(state), "the record is removed once used");

            // No record: nothing to do, and nothing said.
            var again = await ProcessRunner.RunAsync("bash", [Path.Combine(RepoRoot, "scripts", "libvirtd-up"), "--stop-started"], new ProcessOptions
            {
                Check = false,
                Environment = new Dictionary<string, string?> { ["LAB_LIBVIRTD_STATE"] = state },
            });
            Assert.Equal((0, ""), (again.ExitCode, again.StandardOutput));
            Assert.True(Alive(reused));
        }
        finally
        {
            foreach (var p in new[] { recorded, reused })
            {
                if (!p.HasExited)
                {
                    p.Kill();
                    p.WaitForExit();
                }
            }
        }
    }
}
