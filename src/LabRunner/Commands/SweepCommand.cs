using System.CommandLine;
using LabKernel;
using LabRunner.Notebooks;

namespace LabRunner.Commands;

/// <summary>
/// <c>lab sweep NOTEBOOK --matrix FILE [--hosts FILE] [-j N] [-o DIR] [--plot-x NAME]</c>: one <c>lab run</c> of the notebook per
/// combination of the matrix's values (<see cref="SweepRunner"/>). Exit codes: 0 every combination ran and none was
/// refuted, 4 some refuted, 1 some failed, 2 usage error (one line, before any run starts), 130 Ctrl-C, 143 SIGTERM.
/// </summary>
internal static class SweepCommand
{
    public static Command Create()
    {
        var notebook = new Argument<string>("NOTEBOOK") { Description = "The notebook to run (.ipynb, .dib or .csx).", Arity = ArgumentArity.ZeroOrOne };
        var matrix = new Option<string>("--matrix", "-m") { HelpName = "FILE", Description = "YAML or JSON mapping of parameter names to lists of values; every combination is one run." };
        var hosts = new Option<string>("--hosts") { HelpName = "FILE", Description = "YAML or JSON list of {uri, jobs, domain, hostFolder}: libvirt connections to run on (-p Backend libvirt -p LibvirtUri URI, and Domain and HostFolder when given, added to each run). Another host's files are reached over SSH (qemu+ssh://USER@HOST/system?keyfile=KEY&known_hosts=FILE, or lab_ssh=USER@HOST beside qemu+tls://); without a domain each run makes its own there." };
        var jobs = new Option<string>("--jobs", "-j") { HelpName = "N", Description = "Runs at once on the embedded guest (default 1)." };
        var output = new Option<string>("--output", "-o") { HelpName = "DIR", Description = "The sweep's folder (default: NAME.sweep in the current directory); runs/ID/ per combination, sweep.json, sweep.html." };
        var plotX = new Option<string>("--plot-x") { HelpName = "NAME", Description = "The matrix parameter sweep.html plots each measurement against (default: the first whose values are all numbers, else the first)." };
        var cmd = new Command("sweep", "Run a notebook once per combination of parameter values, resumably, and summarize the findings. "
            + "Exit codes: 0 all ran, none refuted; 4 some refuted; 1 some failed; 2 usage error; 130 SIGINT.")
        {
            notebook, matrix, hosts, jobs, output, plotX,
        };
        cmd.SetAction(async (parse, _) =>
        {
            // As lab run: from here on Ctrl-C stops starting runs, and the running ones stop as lab run stops.
            using var interruption = RunInterruption.Listen();
            try
            {
                var path = parse.GetValue(notebook) ?? throw new LabUsageException("sweep: NOTEBOOK is required");
                var matrixPath = parse.GetValue(matrix) ?? throw new LabUsageException("sweep: --matrix FILE is required");
                var hostsPath = parse.GetValue(hosts);
                // Read here rather than as an int option, so that a wrong value is this one line, not the parser's.
                int? jobCount = parse.GetValue(jobs) is { } jobText
                    ? int.TryParse(jobText, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1
                        ? n
                        : throw new LabUsageException($"sweep: -j {jobText}: expected a whole number of at least 1")
                    : null;
                if (jobCount is not null && hostsPath is not null)
                {
                    throw new LabUsageException("sweep: give -j or --hosts (each host's jobs say how many runs it takes at once), not both");
                }
                if (!File.Exists(path))
                {
                    throw new LabUsageException($"sweep: {path}: no such file");
                }
                var axes = SweepMatrix.Read(matrixPath);
                var hostList = hostsPath is null ? null : SweepMatrix.ReadHosts(hostsPath);
                if (hostList is not null && axes.FirstOrDefault(a => a.Name is "Backend" or "LibvirtUri" or "Domain" or "HostFolder") is { } clash)
                {
                    throw new LabUsageException($"sweep: --matrix {matrixPath} sets {clash.Name}, which --hosts sets for each run: drop one of them");
                }
                // Checked before any run, so a misspelt name costs one line rather than a sweep without its charts.
                var plotAxis = parse.GetValue(plotX);
                if (plotAxis is not null && !axes.Any(a => a.Name == plotAxis))
                {
                    throw new LabUsageException($"sweep: --plot-x {plotAxis}: not a parameter of --matrix {matrixPath} ({string.Join(", ", axes.Select(a => a.Name))})");
                }
                var combinations = SweepMatrix.Combinations(axes);
                Validate(path, combinations, hostList);
                var dir = Path.GetFullPath(parse.GetValue(output) ?? Path.GetFileNameWithoutExtension(path) + ".sweep");
                Directory.CreateDirectory(Path.Combine(dir, "runs"));
                var sweep = new SweepRunner(hostList, jobCount ?? 1)
                {
                    NotebookPath = Path.GetFullPath(path),
                    Directory = dir,
                    Axes = axes,
                    Combinations = combinations,
                    Interruption = interruption,
                    PlotX = plotAxis,
                };
                return await sweep.RunAsync().ConfigureAwait(false);
            }
            catch (LabUsageException e)
            {
                await Console.Error.WriteLineAsync($"lab: {e.Message}").ConfigureAwait(false);
                return RunExitCodes.UsageError;
            }
            catch (LabException e)
            {
                await Console.Error.WriteLineAsync($"lab: {e.Message}").ConfigureAwait(false);
                return RunExitCodes.CellFailed;
            }
        });
        return cmd;
    }

    /// <summary>
    /// Every combination's parameters injected as <c>lab run</c> injects them, before any run starts: an unknown name or
    /// a value that does not fit its declared type is a usage error of the sweep, not N failed runs.
    /// </summary>
    private static void Validate(string path, IReadOnlyList<SweepCombination> combinations, IReadOnlyList<SweepHost>? hosts)
    {
        var notebook = NotebookReader.Read(path);
        foreach (var c in combinations)
        {
            var parameters = c.Parameters.ToList();
            if (hosts is not null)
            {
                parameters.Add(("Backend", "libvirt"));
                parameters.Add(("LibvirtUri", hosts[0].Uri));
            }
            try
            {
                Parameters.Inject(notebook, parameters);
            }
            catch (LabUsageException e)
            {
                throw new LabUsageException($"sweep: {c.Id}: {e.Message}");
            }
        }
    }
}
