using LabKernel.Diagnostics;
using LabKernel.Host;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Processes;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// The notebook kernel SIGKILLed while its guest runs: no clean-up code runs, so the QEMU it started lives on,
/// orphaned. `lab run` says the kernel died; `lab clean` finds the orphan and stops it; every image checks clean.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class KilledKernelTests
{
    [Fact]
    public async Task Given_a_notebook_kernel_killed_while_its_guest_runs_When_lab_clean_runs_Then_its_orphaned_QEMU_is_stopped_and_every_image_checks_clean()
    {
        var running = NotebookRun.RunAsync("01-live-snapshot-integrity", "Count", "4000000", "SnapshotAfterLines", "3999000");

        // The kernel is the QEMU's parent once the guest has booted.
        var (qemu, kernel) = await Poll.UntilAsync(
            _ => Task.FromResult(FindGuestQemu(Environment.ProcessId) is { } found ? (true, found, "started") : (false, default((int, int)), "no QEMU for nb01 yet")),
            "the notebook's guest QEMU to start", TimeSpan.FromMinutes(5));
        Assert.DoesNotContain(Leftovers.FindOrphans(), o => o.Pid == qemu);
        await ProcessRunner.RunAsync("kill", ["-KILL", kernel.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

        using var run = await running;
        Assert.NotEqual(0, run.ExitCode);
        var orphan = Assert.Single(Leftovers.FindOrphans(), o => o.Pid == qemu);

        Assert.True(Directory.Exists(orphan.RuntimeFolder), $"the orphan's runtime folder {orphan.RuntimeFolder} is not there");
        var lines = await Leftovers.CleanAsync(new LeftoverReport([], [], null, [orphan]), includeKept: false);
        // SIGTERM was enough (QEMU closes its images cleanly); no SIGKILL 30 s later.
        Assert.Contains(lines, l => l.StartsWith($"stopped (SIGTERM) orphaned QEMU pid {qemu} ", StringComparison.Ordinal));
        Assert.False(File.Exists($"/proc/{qemu}/cmdline"));
        Assert.False(Directory.Exists(orphan.RuntimeFolder), $"{orphan.RuntimeFolder} is still there");
        var images = await run.AssertLeftCleanAsync();
        Assert.Contains(images, i => i.EndsWith("overlay1.qcow2", StringComparison.Ordinal));
    }

    /// <summary>
    /// The QEMU of notebook 01's guest and its parent (the notebook kernel), once it runs, among the descendants of
    /// <paramref name="ancestor"/> only: the other lane of scripts/test may run notebook 01 at the same moment, and
    /// its QEMU (same name pattern, another process tree) must not be taken for this test's.
    /// </summary>
    internal static (int Qemu, int Parent)? FindGuestQemu(int ancestor)
    {
        var processes = HostProcesses.List();
        var parents = processes.ToDictionary(p => p.Pid, p => p.ParentPid);
        return processes.FirstOrDefault(p => p.Name.StartsWith("qemu-system", StringComparison.Ordinal)
                && p.CommandLine.Contains("lab-nb01-", StringComparison.Ordinal)
                && DescendsFrom(p.Pid, ancestor, parents)) is { } q
            ? (q.Pid, q.ParentPid)
            : null;
    }

    private static bool DescendsFrom(int pid, int ancestor, Dictionary<int, int> parents)
    {
        for (var depth = 0; depth < 64 && parents.TryGetValue(pid, out var parent) && parent > 1; depth++)
        {
            if (parent == ancestor)
            {
                return true;
            }
            pid = parent;
        }
        return false;
    }
}
