using System.Diagnostics;
using System.Text.Json;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// The end of a run: the kernel's own clean-up at exit (where LabKernel quits its QEMU machines and destroys and
/// undefines its libvirt domains) is waited for, not cut short. A clean-up that was killed half-way left a lab-made
/// domain destroyed but still defined. No guest: the clean-up here is an exit handler that takes longer than the
/// runner used to allow, and leaves a mark when it has finished.
/// </summary>
public sealed class KernelExitTests
{
    [Fact]
    public async Task Given_a_kernel_whose_exit_clean_up_is_slow_When_the_run_ends_Then_the_runner_waits_for_it_to_finish()
    {
        using var scratch = TempDir("kernel-exit");
        var mark = Path.Combine(scratch.Path, "cleaned");
        var clock = Stopwatch.StartNew();

        // 12 s: longer than the 2 s the runner gave an idle kernel plus the 8 s between its SIGTERM and the kill.
        var outcome = await RunCellAsync(new NotebookRunner(), scratch.Path,
            "AppDomain.CurrentDomain.ProcessExit += (_, _) => { System.Threading.Thread.Sleep(12_000); " +
            $"System.IO.File.WriteAllText({JsonSerializer.Serialize(mark)}, \"done\"); }};\n" +
            "Console.WriteLine(\"registered\");");

        Assert.Equal(0, outcome.ExitCode);
        Assert.True(File.Exists(mark), $"the kernel's exit clean-up was cut short: no mark after {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task Given_a_kernel_that_hangs_at_exit_When_the_run_ends_Then_it_is_stopped_after_the_clean_up_limit()
    {
        using var scratch = TempDir("kernel-exit-hang");
        var pidFile = Path.Combine(scratch.Path, "kernel.pid");

        // The limit, then SIGTERM (whose handling runs the same hung exit) and the kill after its grace. Without a
        // limit the run would never end: the wait's own limit is far above that sum, not a speed target.
        var outcome = await RunCellAsync(new NotebookRunner { KernelCleanupLimit = TimeSpan.FromSeconds(3) }, scratch.Path,
            $"System.IO.File.WriteAllText({JsonSerializer.Serialize(pidFile)}, Environment.ProcessId.ToString());\n" +
            "AppDomain.CurrentDomain.ProcessExit += (_, _) => System.Threading.Thread.Sleep(System.Threading.Timeout.Infinite);")
            .WaitAsync(TimeSpan.FromMinutes(5));

        Assert.Equal(0, outcome.ExitCode);
        var pid = int.Parse(await File.ReadAllTextAsync(pidFile), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ", StringComparison.Ordinal),
            $"the kernel (pid {pid}) still runs");
    }

    /// <summary>Runs a one-cell .dib holding <paramref name="code"/> in <paramref name="folder"/> with <paramref name="runner"/>.</summary>
    private static async Task<RunOutcome> RunCellAsync(NotebookRunner runner, string folder, string code)
    {
        var input = Path.Combine(folder, "exit.dib");
        await File.WriteAllTextAsync(input, "#!csharp\n" + code + "\n");
        return await runner.RunAsync(new RunOptions { InputPath = input, OutputPath = Path.Combine(folder, "out.ipynb"), Timeout = TimeSpan.FromMinutes(2) }, new SilentProgress());
    }
}
