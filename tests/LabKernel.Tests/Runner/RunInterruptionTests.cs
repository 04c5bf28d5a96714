using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using LabKernel.Processes;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// Ctrl-C of `lab run` at any moment: the current cell is stopped (the kernel with it, whatever the cell does), no
/// further cell runs, the notebook so far is valid nbformat, and the exit code is 130. No guest: the cell that is
/// interrupted is blocked in a loop, as a cell starting a guest is blocked in `Lab.StartAsync`.
/// </summary>
public sealed class RunInterruptionTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    /// <summary>A notebook whose second cell writes the kernel's pid to <paramref name="pidFile"/> and then never ends.</summary>
    private static async Task<string> BlockedNotebookAsync(string dir, string pidFile)
    {
        var input = Path.Combine(dir, "blocked.dib");
        await File.WriteAllTextAsync(input,
            "#!csharp\nConsole.WriteLine(\"first\");\n" +
            $"#!csharp\nSystem.IO.File.WriteAllText({JsonSerializer.Serialize(pidFile)}, Environment.ProcessId.ToString());\nwhile (true) System.Threading.Thread.Sleep(50);\n" +
            "#!csharp\nConsole.WriteLine(\"never\");\n");
        return input;
    }

    private static Task<int> WaitForPidAsync(string pidFile, Task running) =>
        LabKernel.Host.Poll.UntilAsync(async _ =>
        {
            Assert.False(running.IsCompleted, "the run ended before its blocked cell started");
            var text = File.Exists(pidFile) ? await File.ReadAllTextAsync(pidFile) : "";
            return (text.Length > 0, text.Length > 0 ? int.Parse(text, CultureInfo.InvariantCulture) : 0, "no pid written yet");
        }, "the blocked cell to write the kernel's pid", Limit);

    private static void AssertInterrupted(string output, int exit, int expectedExit, string signal)
    {
        Assert.Equal(expectedExit, exit);
        var notebook = ReadJson(output);
        Assert.Equal("interrupted", notebook["metadata"]!["lab"]!["status"]!.GetValue<string>());
        Assert.Equal(expectedExit, notebook["metadata"]!["lab"]!["exit_code"]!.GetValue<int>());
        var cells = Cells(notebook);
        Assert.Contains($"lab run was interrupted** ({signal})", Source(cells[0]), StringComparison.Ordinal);
        Assert.Equal(new string?[] { "ok", "interrupted", "not-run" }, cells.Where(c => c["cell_type"]!.GetValue<string>() == "code").Select(Status).ToArray());
        var interrupted = cells.Single(c => Status(c) == "interrupted");
        Assert.Equal("Interrupted", interrupted["outputs"]!.AsArray()[^1]!["ename"]!.GetValue<string>());
    }

    private static bool Alive(int pid) => File.Exists($"/proc/{pid}/status")
        && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ", StringComparison.Ordinal);

    [Fact]
    public async Task Given_a_cell_that_is_blocked_When_the_run_is_interrupted_Then_the_kernel_stops_no_further_cell_runs_and_it_exits_130()
    {
        using var scratch = TempDir("interrupt-cell");
        var pidFile = Path.Combine(scratch.Path, "kernel.pid");
        var input = await BlockedNotebookAsync(scratch.Path, pidFile);
        var output = Path.Combine(scratch.Path, "out.ipynb");
        using var interruption = RunInterruption.Manual();
        var runner = new NotebookRunner { Interruption = interruption };

        var running = runner.RunAsync(new RunOptions { InputPath = input, OutputPath = output, Timeout = Limit }, new SilentProgress());
        var kernel = await WaitForPidAsync(pidFile, running);
        interruption.Request(PosixSignal.SIGINT);
        var clock = Stopwatch.StartNew();
        var outcome = await running.WaitAsync(Limit);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopped {clock.Elapsed} after the interrupt");
        Assert.Equal("interrupted", outcome.Status);
        AssertInterrupted(output, outcome.ExitCode, 130, "SIGINT");
        Assert.False(Alive(kernel), $"the kernel (pid {kernel}) still runs");
        await AssertValidNotebookAsync(output);
    }

    [Fact]
    public async Task Given_an_interrupt_before_the_first_cell_When_the_run_starts_Then_no_cell_runs_and_it_exits_130()
    {
        using var scratch = TempDir("interrupt-early");
        var input = Path.Combine(scratch.Path, "early.dib");
        await File.WriteAllTextAsync(input, "#!csharp\nConsole.WriteLine(\"one\");\n#!csharp\nConsole.WriteLine(\"two\");\n");
        var output = Path.Combine(scratch.Path, "out.ipynb");
        using var interruption = RunInterruption.Manual();
        interruption.Request(PosixSignal.SIGINT);

        var outcome = await new NotebookRunner { Interruption = interruption }
            .RunAsync(new RunOptions { InputPath = input, OutputPath = output, Timeout = Limit }, new SilentProgress()).WaitAsync(Limit);

        Assert.Equal((130, "interrupted", 0), (outcome.ExitCode, outcome.Status, outcome.CellsRun));
        var cells = Cells(ReadJson(output));
        var code = cells.Where(c => c["cell_type"]!.GetValue<string>() == "code").ToList();
        Assert.Equal(2, code.Count);
        Assert.All(code, c => Assert.Equal("not-run", Status(c)));
        Assert.Contains("lab run was interrupted** (SIGINT)", Source(cells[0]), StringComparison.Ordinal);
        await AssertValidNotebookAsync(output);
    }

    /// <summary>
    /// The real signals, to `lab run` as its own process, started as a CI job or a script's background command starts
    /// it: with SIGINT ignored by inheritance (where .NET alone would never see the signal, and the notebook ran to
    /// its end with exit 0). The signal goes to the runner, or to its kernel (a `kill -INT` of the wrong pid; a
    /// terminal's Ctrl-C reaches both).
    /// </summary>
    [Theory]
    [InlineData("runner", "INT", 130)]
    [InlineData("kernel", "INT", 130)]
    [InlineData("runner", "TERM", 143)]
    public async Task Given_lab_run_started_with_SIGINT_ignored_When_a_signal_reaches_a_process_of_the_run_during_a_blocked_cell_Then_the_run_stops_with_its_exit_code(string target, string signal, int expected)
    {
        using var scratch = TempDir($"interrupt-{target}-{signal}");
        var pidFile = Path.Combine(scratch.Path, "kernel.pid");
        var input = await BlockedNotebookAsync(scratch.Path, pidFile);
        var output = Path.Combine(scratch.Path, "out.ipynb");
        var (dotnet, prefix) = KernelClient.KernelCommandLine();
        // bash's `trap '' INT` is the ignore a non-interactive shell gives its background commands; exec keeps it.
        var psi = new ProcessStartInfo("bash", ["-c", "trap '' INT; exec \"$@\"", "lab", dotnet, .. prefix, "run", input, "-o", output, "--no-progress", "--timeout", "120"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var lab = Process.Start(psi)!;
        var stdout = lab.StandardOutput.ReadToEndAsync();
        var stderr = lab.StandardError.ReadToEndAsync();
        try
        {
            var kernel = await WaitForPidAsync(pidFile, lab.WaitForExitAsync());

            var pid = target == "runner" ? lab.Id : kernel;
            await ProcessRunner.RunAsync("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
            var clock = Stopwatch.StartNew();
            using var limit = new CancellationTokenSource(Limit);
            await lab.WaitForExitAsync(limit.Token);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopped {clock.Elapsed} after SIG{signal}");

            var printed = await stdout + await stderr;
            Assert.True(lab.ExitCode == expected, $"exit {lab.ExitCode} after SIG{signal} to the {target} ({expected} expected): {printed}");
            AssertInterrupted(output, lab.ExitCode, expected, "SIG" + signal);
            Assert.False(Alive(kernel), $"the kernel (pid {kernel}) still runs");
            await AssertValidNotebookAsync(output);
        }
        finally
        {
            if (!lab.HasExited)
            {
                lab.Kill(entireProcessTree: true);
            }
        }
    }
}
