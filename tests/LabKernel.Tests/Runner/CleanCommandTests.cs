using LabKernel.Diagnostics;

namespace LabKernel.Tests.Runner;

/// <summary>`lab clean`'s input errors and the host leftovers' one-line summary (the clean itself: Libvirt/SecondHostTests).</summary>
public sealed class CleanCommandTests
{
    [Fact]
    public async Task A_host_folder_without_a_remote_uri_is_a_one_line_usage_error()
    {
        var r = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(2), "clean", "--host-folder", "/var/tmp/labnotebooks");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("lab: --host-folder needs --uri naming a host reached over SSH (a local run's images are in its run folder)", r.StandardError.Trim());
    }

    [Fact]
    public void The_summary_counts_free_kept_used_and_foreign_entries_and_sums_only_the_free_ones()
    {
        var report = new HostLeftoverReport("root@h:22", "/var/tmp/labnotebooks",
        [
            new HostLeftoverRun("/var/tmp/labnotebooks/a", 3L << 20, false, null),
            new HostLeftoverRun("/var/tmp/labnotebooks/b", 1L << 20, false, null),
            new HostLeftoverRun("/var/tmp/labnotebooks/c", 7L << 20, true, null),
            new HostLeftoverRun("/var/tmp/labnotebooks/d", 9L << 20, false, "process 12 there names a file in it"),
        ], 2);
        Assert.Equal("/var/tmp/labnotebooks on root@h:22: 2 run folder(s) left (4 MiB), 1 kept on purpose, 1 in use, 2 other entries not the lab's", report.Summary);
        Assert.Equal("/var/tmp/labnotebooks on root@h:22: no run folders left", new HostLeftoverReport("root@h:22", "/var/tmp/labnotebooks", [], 0).Summary);
    }
}
