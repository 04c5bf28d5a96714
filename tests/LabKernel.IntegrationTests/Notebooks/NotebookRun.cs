using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using LabKernel.Processes;
using LabRunner.Commands;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>Runs an experiment notebook through `lab run` at a small scale and reads back what it found.</summary>
internal sealed class NotebookRun : IDisposable
{
    private NotebookRun(string folder, int exitCode, string executed, IReadOnlyList<(string Claim, string Observed, string Verdict)> findings)
    {
        Folder = folder;
        ExitCode = exitCode;
        Executed = executed;
        Findings = findings;
    }

    public string Folder { get; }
    public int ExitCode { get; }
    public string Executed { get; }
    public IReadOnlyList<(string Claim, string Observed, string Verdict)> Findings { get; }

    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "LabNotebooks.sln")))
                {
                    return dir.FullName;
                }
            }
            throw new InvalidOperationException("repository root not found");
        }
    }

    public static Task<NotebookRun> RunAsync(string name, params string[] parameters) => RunWithAsync(name, [], parameters);

    private static readonly ConcurrentDictionary<string, Lazy<Task<NotebookRun>>> SharedRuns = new();

    /// <summary>
    /// One `lab run` of a notebook with these parameters per test process, shared by every test that asserts on it:
    /// the notebook's own test checks its findings, charts and report, and <see cref="ConformanceTests"/> compares
    /// its verdicts with the real kernel hosts'. Disposing it does nothing; its folder goes when the process exits.
    /// A failed run is shared too (each test reports it), never run again.
    /// </summary>
    public static Task<NotebookRun> SharedAsync(string name, params string[] parameters) =>
        SharedRuns.GetOrAdd(name + "\0" + string.Join("\0", parameters), _ => new Lazy<Task<NotebookRun>>(async () =>
        {
            var run = await RunAsync(name, parameters);
            run._shared = true;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => run.DeleteFolder();
            return run;
        })).Value;

    private bool _shared;

    /// <summary>As <see cref="RunAsync"/>, with extra `lab run` options (e.g. a cell timeout that interrupts the run).</summary>
    public static async Task<NotebookRun> RunWithAsync(string name, IReadOnlyList<string> options, params string[] parameters)
    {
        var (folder, executed, args) = Prepare(name, options, parameters);
        var exit = await LabCli.RunAsync([.. args]);
        return Read(folder, exit, executed);
    }

    /// <summary>
    /// Runs a notebook file the test wrote itself (not one of notebooks/) through `lab run`; its executed copy and
    /// report go to a new folder (this run's <see cref="Folder"/>).
    /// </summary>
    public static async Task<NotebookRun> RunFileAsync(string input)
    {
        var folder = NewFolder("lab-nb-file-");
        var executed = Path.Combine(folder, Path.GetFileNameWithoutExtension(input) + ".executed.ipynb");
        var exit = await LabCli.RunAsync(["run", input, "-o", executed, "--report", Path.Combine(folder, "report.html"), "--no-progress", "--timeout", "1200"]);
        return Read(folder, exit, executed);
    }

    /// <summary>
    /// As <see cref="RunAsync"/>, but `lab run` is a process of its own (`dotnet lab.dll`), so a test can signal it
    /// as a user would (Ctrl-C is SIGINT): <paramref name="whileRunning"/> gets its pid and the path of the executed
    /// notebook (which `lab run` saves after every cell, see <see cref="CellStatus(string, string)"/>) and runs beside it.
    /// </summary>
    public static Task<NotebookRun> RunAsProcessAsync(string name, Func<int, string, Task> whileRunning, params string[] parameters) =>
        RunAsProcessAsync(name, new Dictionary<string, string>(), whileRunning, parameters);

    /// <summary>As above, with variables added to the environment of `lab run` and its kernel (e.g. <c>LAB_WARM=0</c>).</summary>
    public static async Task<NotebookRun> RunAsProcessAsync(string name, IReadOnlyDictionary<string, string> environment, Func<int, string, Task> whileRunning, params string[] parameters)
    {
        var (folder, executed, args) = Prepare(name, [], parameters);
        var lab = Path.Combine(AppContext.BaseDirectory, "lab.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [lab, .. args])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            WorkingDirectory = RepoRoot,
        };
        foreach (var (k, v) in environment)
        {
            start.Environment[k] = v;
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        await whileRunning(process.Id, executed);
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(limit.Token);
        var run = Read(folder, process.ExitCode, executed);
        run.Output = await stdout + await stderr;
        return run;
    }

    /// <summary>What the process printed (stdout, then stderr), for a run made by <c>RunAsProcessAsync</c>.</summary>
    public string Output { get; private set; } = "";

    private static (string Folder, string Executed, List<string> Args) Prepare(string name, IReadOnlyList<string> options, string[] parameters)
    {
        var folder = NewFolder($"lab-nb-{name[..2]}-");
        var executed = Path.Combine(folder, $"{name}.executed.ipynb");
        var args = new List<string> { "run", Path.Combine(RepoRoot, "notebooks", $"{name}.ipynb"), "-o", executed, "--report", Path.Combine(folder, "report.html"), "--no-progress", "--timeout", "1200" };
        args.AddRange(options);
        foreach (var p in parameters.Concat(["KeepArtifacts", "true", "OutputDir", folder]).Chunk(2))
        {
            args.AddRange(["-p", p[0], p[1]]);
        }
        return (folder, executed, args);
    }

    private static NotebookRun Read(string folder, int exit, string executed)
    {
        var findings = new List<(string, string, string)>();
        var manifest = Directory.GetFiles(folder, "artifacts.json", SearchOption.AllDirectories).SingleOrDefault();
        if (manifest is not null)
        {
            foreach (var f in JsonNode.Parse(File.ReadAllText(manifest))!["findings"]!.AsArray())
            {
                findings.Add((f!["Claim"]!.GetValue<string>(), f["Observed"]!.GetValue<string>(), f["Verdict"]!.GetValue<string>() + (f["Hypothesis"]?.GetValue<bool>() == true ? " (hypothesis)" : "")));
            }
        }
        return new NotebookRun(folder, exit, executed, findings);
    }

    /// <summary>
    /// The Plotly.NET charts of the executed notebook (each output's <c>application/vnd.plotly.v1+json</c>), in
    /// order, and how many times the report inlines plotly.js.
    /// </summary>
    public (IReadOnlyList<JsonObject> Charts, int PlotlyJsInReport) Charts()
    {
        var charts = JsonNode.Parse(File.ReadAllText(Executed))!["cells"]!.AsArray()
            .SelectMany(c => c!["outputs"]?.AsArray() ?? [])
            .Select(o => o!["data"]?["application/vnd.plotly.v1+json"])
            .OfType<JsonObject>()
            .ToList();
        var report = File.ReadAllText(Path.Combine(Folder, "report.html"));
        var marker = LabNotebooks.PlotlyJs.Text[..200];
        var count = 0;
        for (var i = report.IndexOf(marker, StringComparison.Ordinal); i >= 0; i = report.IndexOf(marker, i + 1, StringComparison.Ordinal))
        {
            count++;
        }
        return (charts, count);
    }

    /// <summary>The shaded windows' labels of a chart (its annotations), in order.</summary>
    public static IReadOnlyList<string> ShadedLabels(JsonObject chart) =>
        (chart["layout"]?["annotations"] as JsonArray ?? []).Select(a => a!["text"]!.GetValue<string>()).ToList();

    /// <summary>
    /// What an interrupted run must leave: no QEMU still running on its files, and every image in its folder one
    /// that <c>qemu-img check</c> accepts. Returns the images checked.
    /// </summary>
    public async Task<IReadOnlyList<string>> AssertLeftCleanAsync()
    {
        var qemus = await ProcessRunner.RunAsync("pgrep", ["-f", $"qemu-system.*{Folder}"], new ProcessOptions { Check = false });
        Assert.True(qemus.StandardOutput.Trim().Length == 0, $"QEMU still running on {Folder}: pids {qemus.StandardOutput.Trim()}");
        var images = Directory.GetFiles(Folder, "*.qcow2", SearchOption.AllDirectories);
        Assert.NotEmpty(images);
        foreach (var image in images)
        {
            var check = await LabKernel.Images.QemuImg.Local.CheckAsync(image);
            Assert.True(check.IsClean, $"{image}: {check.Summary}");
        }
        return images;
    }

    public async Task AssertValidNbformatAsync()
    {
        // Debian's python3-nbformat: /usr/bin/python3, not a python3 that PATH may find first (pyenv).
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var r = await ProcessRunner.RunAsync(python, ["-c", "import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", Executed],
            new ProcessOptions { Check = false });
        Assert.True(r.Succeeded, $"nbformat rejects {Executed}: {r.StandardError}");
    }

    /// <summary>
    /// The `lab run` status (<c>metadata.lab.status</c>: ok, error, timeout, interrupted, not-run) of the first code
    /// cell whose source contains <paramref name="sourceContains"/>, in the executed notebook at
    /// <paramref name="executed"/>; null while that cell has not finished (or the notebook is not written yet).
    /// `lab run` rewrites the file after every cell (by rename), so it can be read while the run goes on.
    /// </summary>
    public static string? CellStatus(string executed, string sourceContains)
    {
        JsonNode? nb;
        try
        {
            nb = JsonNode.Parse(File.ReadAllText(executed));
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException)
        {
            return null;
        }
        var cell = nb?["cells"]?.AsArray().FirstOrDefault(c => c?["cell_type"]?.GetValue<string>() == "code" && SourceOf(c).Contains(sourceContains, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"no code cell of {Path.GetFileName(executed)} contains '{sourceContains}'");
        return cell["metadata"]?["lab"]?["status"]?.GetValue<string>();
    }

    /// <summary>As <see cref="CellStatus(string, string)"/>, in this run's executed notebook.</summary>
    public string? CellStatus(string sourceContains) => CellStatus(Executed, sourceContains);

    /// <summary>The text/plain result of the first code cell whose source contains <paramref name="sourceContains"/> ("" if none).</summary>
    public string CellResult(string sourceContains)
    {
        var cell = JsonNode.Parse(File.ReadAllText(Executed))!["cells"]!.AsArray()
            .First(c => c!["cell_type"]!.GetValue<string>() == "code" && SourceOf(c).Contains(sourceContains, StringComparison.Ordinal))!;
        var result = cell["outputs"]?.AsArray().FirstOrDefault(o => o?["output_type"]?.GetValue<string>() == "execute_result");
        return result?["data"]?["text/plain"] is { } text ? SourceOf(text) : "";
    }

    /// <summary>nbformat's multi-line string: one string, or an array of lines.</summary>
    private static string SourceOf(JsonNode? cellOrText)
    {
        var node = cellOrText is JsonObject o && o.ContainsKey("source") ? o["source"] : cellOrText;
        return node switch
        {
            JsonArray lines => string.Concat(lines.Select(l => l?.GetValue<string>())),
            JsonValue v when v.TryGetValue<string>(out var text) => text,
            _ => "",
        };
    }

    /// <summary>The error text of the first failed cell, for assertion messages.</summary>
    public string FirstError()
    {
        if (!File.Exists(Executed))
        {
            return "(no executed notebook)";
        }
        var nb = JsonNode.Parse(File.ReadAllText(Executed))!;
        foreach (var cell in nb["cells"]!.AsArray())
        {
            foreach (var o in cell!["outputs"]?.AsArray() ?? [])
            {
                if (o!["output_type"]?.GetValue<string>() == "error")
                {
                    return o["evalue"]?.GetValue<string>() ?? "";
                }
            }
        }
        // No cell failed: a refuted finding the notebook did not declare expected (lab run's exit 4) is the reason.
        var refuted = Findings.Where(f => f.Verdict == "refuted").Select(f => $"refuted: {f.Claim}: {f.Observed}").ToList();
        return refuted.Count > 0 ? string.Join(" | ", refuted) : "(none)";
    }

    public void Dispose()
    {
        if (!_shared)
        {
            DeleteFolder();
        }
    }

    /// <summary>The file in each run's folder that names the test process it belongs to: its pid and start time.</summary>
    private const string OwnerFile = ".lab-test-owner";

    private static readonly Lazy<int> LeftBehind = new(DeleteFoldersOfEndedProcesses);

    /// <summary>
    /// A new run folder in the temp folder, marked with this process (<see cref="OwnerFile"/>). The first one a process
    /// makes first deletes the run folders of test processes that have ended: a shared run's folder goes when its process
    /// exits, and a test host the runner ends without its exit handlers (or one killed) left them behind, 2.4 GB for a
    /// kept notebook 03 (a machine's /tmp filled up with 86 of them).
    /// </summary>
    private static string NewFolder(string prefix)
    {
        _ = LeftBehind.Value;
        var folder = Directory.CreateTempSubdirectory(prefix).FullName;
        // Written whole and then renamed into place: another lane's sweep never reads it half written.
        var owner = Path.Combine(folder, OwnerFile);
        File.WriteAllText(owner + ".new", LabKernel.Host.HostProcesses.Identity(Environment.ProcessId) ?? throw new InvalidOperationException("cannot read this process's /proc/self/stat"));
        File.Move(owner + ".new", owner);
        return folder;
    }

    private static int DeleteFoldersOfEndedProcesses()
    {
        var deleted = 0;
        foreach (var folder in Directory.EnumerateDirectories(Path.GetTempPath(), "lab-nb-*"))
        {
            string owner;
            try
            {
                owner = File.ReadAllText(Path.Combine(folder, OwnerFile)).Trim();
            }
            catch (IOException)
            {
                continue; // not marked: not ours to judge
            }
            if (owner.Split(' ') is not [var pid, _] || !int.TryParse(pid, out var id))
            {
                continue; // not a mark this code wrote: not ours to judge
            }
            if (LabKernel.Host.HostProcesses.Identity(id) == owner)
            {
                continue; // its test process still runs (another lane)
            }
            // A killed notebook 03 can leave its second filesystem (a tmpfs) mounted inside.
            foreach (var mount in File.ReadAllLines("/proc/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(folder + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
            {
                ProcessRunner.RunAsync("umount", [mount], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }).GetAwaiter().GetResult();
            }
            if (DeleteMarkedFolder(folder))
            {
                deleted++;
            }
        }
        return deleted;
    }

    private void DeleteFolder() => DeleteMarkedFolder(Folder);

    /// <summary>
    /// Deletes a run folder with its owner mark last: a deletion cut short (a test host ended by the runner while its
    /// exit handler deletes 2 GB, a file still being written) leaves a marked folder the next sweep finishes, not an
    /// unmarked one nothing would ever delete (a recursive delete that takes the mark first left those behind).
    /// </summary>
    private static bool DeleteMarkedFolder(string folder)
    {
        try
        {
            foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos().Where(e => e.Name != OwnerFile).ToList())
            {
                if (entry is DirectoryInfo d && (d.Attributes & FileAttributes.ReparsePoint) == 0)
                {
                    d.Delete(recursive: true);
                }
                else
                {
                    entry.Delete();
                }
            }
            Directory.Delete(folder, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
