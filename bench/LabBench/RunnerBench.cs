using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Processes;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;

namespace LabBench;

/// <summary>
/// `lab run` against its baselines on the same trivial 21-cell notebook, in one run (and its kernel's JIT settings
/// against the runtime's defaults on notebook 01): the wall time of
/// `lab run` (a fresh lab process, its kernel process, Roslyn), of `jupyter nbconvert --execute` running the
/// same notebook in Python (ipykernel), and of a bare Roslyn loop (CSharpScript + ContinueWithAsync per cell,
/// in this process: cold first, then warm). Prints medians and ratios.
/// </summary>
public static class RunnerBench
{
    private const int Cells = 21;
    private const int Repetitions = 3;

    public static async Task RunAsync(TextWriter output)
    {
        var dir = Directory.CreateTempSubdirectory("lab-runner-bench-");
        try
        {
            var csharp = Path.Combine(dir.FullName, "trivial-csharp.ipynb");
            
            await File.WriteAllTextAsync(csharp, Notebook(i => $"var x{i} = {i} * 2;\nx{i}", ".net-csharp", "C#"));
            output.WriteLine($"runner: a trivial {Cells}-cell notebook, median of {Repetitions} runs each");

            var labDll = typeof(LabRunner.Cli.Program).Assembly.Location;
            var dotnet = ProcessRunner.Which("dotnet") ?? "dotnet";
            var lab = new List<double>();
            for (var r = 0; r < Repetitions; r++)
            {
                var result = await ProcessRunner.RunAsync(dotnet, [labDll, "run", csharp, "-o", Path.Combine(dir.FullName, "out-csharp.ipynb"), "--no-progress"],
                    new ProcessOptions { Timeout = TimeSpan.FromMinutes(5) });
                lab.Add(result.Duration.TotalSeconds);
            }

            // The same C# notebook in the real hosts of the C# kernel: dotnet-repl (local tool, under `script` for a
            // terminal) and VS Code's host (dotnet-interactive as the Jupyter kernel .net-csharp) under nbconvert.
            var root = RepoRoot();
            var repl = new List<double>();
            var jupyter = new List<double>();
            for (var r = 0; r < Repetitions; r++)
            {
                var command = $"dotnet tool run dotnet-repl -- --run '{csharp}' --exit-after-run --output-path '{Path.Combine(dir.FullName, "out-repl.ipynb")}'";
                var result = await ProcessRunner.RunAsync("script", ["-qec", command, "/dev/null"],
                    new ProcessOptions { Timeout = TimeSpan.FromMinutes(5), Check = false, WorkingDirectory = root });
                repl.Add(result.Duration.TotalSeconds);
            }
            var jupyterPath = ProcessRunner.Which("jupyter");
            if (jupyterPath is not null)
            {
                for (var r = 0; r < Repetitions; r++)
                {
                    var result = await ProcessRunner.RunAsync(jupyterPath,
                        ["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=.net-csharp", "--output", Path.Combine(dir.FullName, "out-jupyter.ipynb"), csharp],
                        new ProcessOptions { Timeout = TimeSpan.FromMinutes(5), Environment = new Dictionary<string, string?> { ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1" } });
                    jupyter.Add(result.Duration.TotalSeconds);
                }
            }

            var roslyn = new List<double>();
            for (var r = 0; r < Repetitions + 1; r++)
            {
                roslyn.Add(await BareRoslynAsync());
            }
            var roslynCold = roslyn[0];
            var roslynWarm = Median(roslyn.Skip(1));

            // The kernel's JIT settings (KernelJit) against the runtime's defaults (LAB_KERNEL_JIT=default), alternated, on
            // notebook 01 at small scale (a warm-started embedded guest, a writer, a live snapshot, offline reads): CPU
            // time of the lab process, its kernel and its guest's QEMU (getrusage of reaped children) and wall time.
            var notebook01 = Path.Combine(RepoRoot(), "notebooks", "01-live-snapshot-integrity.ipynb");
            var tuned = (Wall: new List<double>(), Cpu: new List<double>());
            var defaults = (Wall: new List<double>(), Cpu: new List<double>());
            for (var r = 0; r < Repetitions + 2; r++)
            {
                foreach (var (runs, jit) in new[] { (tuned, (string?)null), (defaults, "default") })
                {
                    var before = ChildrenCpuSeconds();
                    var result = await ProcessRunner.RunAsync(dotnet, [labDll, "run", notebook01, "-o", Path.Combine(dir.FullName, "out-jit.ipynb"), "--no-progress",
                        "-p", "Count", "400000", "-p", "SnapshotAfterLines", "40000", "-p", "Quiesce", "fsfreeze"],
                        new ProcessOptions { Timeout = TimeSpan.FromMinutes(5), Environment = new Dictionary<string, string?> { [LabRunner.Notebooks.KernelJit.Variable] = jit } });
                    runs.Wall.Add(result.Duration.TotalSeconds);
                    runs.Cpu.Add(ChildrenCpuSeconds() - before);
                }
            }

            var labMedian = Median(lab);
            output.WriteLine($"  lab run (C# kernel, child process) {labMedian,8:0.000} s   runs: {Join(lab)}");
            output.WriteLine($"  dotnet-repl --run (C# kernel)       {Median(repl),8:0.000} s   runs: {Join(repl)}");
            if (jupyter.Count > 0)
            {
                output.WriteLine($"  nbconvert --execute (.net-csharp)   {Median(jupyter),8:0.000} s   runs: {Join(jupyter)}");
            }
            else
            {
                output.WriteLine("  jupyter nbconvert: not installed (apt-get install jupyter-nbconvert python3-ipykernel)");
            }
            output.WriteLine($"  bare Roslyn loop, cold (in-process) {roslynCold,8:0.000} s");
            output.WriteLine($"  bare Roslyn loop, warm (in-process) {roslynWarm,8:0.000} s   runs: {Join(roslyn.Skip(1))}");
            output.WriteLine($"  ratio lab run / dotnet-repl          {labMedian / Median(repl),8:0.00}   (goal <= 1.0)");
            if (jupyter.Count > 0)
            {
                output.WriteLine($"  ratio lab run / nbconvert            {labMedian / Median(jupyter),8:0.00}   (goal <= 0.8)");
            }
            output.WriteLine($"  ratio lab run / bare Roslyn (cold)   {labMedian / roslynCold,8:0.00}");
            output.WriteLine($"  ratio lab run / bare Roslyn (warm)   {labMedian / roslynWarm,8:0.00}");
            output.WriteLine($"  lab run overhead over cold Roslyn    {(labMedian - roslynCold) * 1000 / Cells,8:0.0} ms per cell");
            output.WriteLine($"  notebook 01, kernel JIT settings    {Median(tuned.Wall),8:0.000} s, {Median(tuned.Cpu),6:0.00} CPU-s   (median of {tuned.Cpu.Count})");
            output.WriteLine($"  notebook 01, LAB_KERNEL_JIT=default {Median(defaults.Wall),8:0.000} s, {Median(defaults.Cpu),6:0.00} CPU-s");
            output.WriteLine($"  ratio CPU tuned / runtime defaults   {Median(tuned.Cpu) / Median(defaults.Cpu),8:0.00}   (goal <= 0.85)");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>User and system CPU seconds of every child process this one has reaped, and their reaped descendants.</summary>
    private static double ChildrenCpuSeconds()
    {
        const int RusageChildren = -1;
        if (getrusage(RusageChildren, out var usage) != 0)
        {
            throw new InvalidOperationException("getrusage(RUSAGE_CHILDREN) failed");
        }
        return usage.UserSeconds + usage.UserMicroseconds / 1e6 + usage.SystemSeconds + usage.SystemMicroseconds / 1e6;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds;
        public long UserMicroseconds;
        public long SystemSeconds;
        public long SystemMicroseconds;
        // The rest of struct rusage (14 longs), unread.
        public long R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, R11, R12, R13;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LabNotebooks.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    /// <summary>The same 21 cells through CSharpScript and ContinueWithAsync, as a notebook kernel would at least do.</summary>
    private static async Task<double> BareRoslynAsync()
    {
        var options = ScriptOptions.Default
            .AddReferences(typeof(Enumerable).Assembly, typeof(Console).Assembly)
            .AddImports("System", "System.Linq", "System.Collections.Generic");
        var clock = Stopwatch.StartNew();
        var state = await CSharpScript.RunAsync("var x0 = 0 * 2;\nx0", options);
        for (var i = 1; i < Cells; i++)
        {
            state = await state.ContinueWithAsync($"var x{i} = {i} * 2;\nx{i}", options);
        }
        return clock.Elapsed.TotalSeconds;
    }

    private static string Notebook(Func<int, string> cell, string kernel, string language)
    {
        var cells = new JsonArray();
        for (var i = 0; i < Cells; i++)
        {
            cells.Add(new JsonObject
            {
                ["cell_type"] = "code",
                ["execution_count"] = null,
                ["id"] = $"cell-{i}",
                ["metadata"] = new JsonObject(),
                ["outputs"] = new JsonArray(),
                ["source"] = cell(i),
            });
        }
        return new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = new JsonObject { ["kernelspec"] = new JsonObject { ["name"] = kernel, ["display_name"] = kernel, ["language"] = language } },
            ["nbformat"] = 4,
            ["nbformat_minor"] = 5,
        }.ToJsonString();
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static string Join(IEnumerable<double> values) => string.Join(", ", values.Select(v => v.ToString("0.000", CultureInfo.InvariantCulture)));
}
