using System.Text.Json.Nodes;
using LabKernel.Processes;
using LabRunner.Commands;

namespace LabKernel.Tests.Runner;

/// <summary>Runs `lab` in-process, finds fixtures, and checks notebooks and reports with the same tools a reader would.</summary>
internal static class RunnerTestSupport
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Fixtures => Path.Combine(RepoRoot, "tests", "LabKernel.Tests", "Fixtures", "Notebooks");

    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    /// <summary>A fresh folder for one test's files, deleted when the test disposes it.</summary>
    public static Scratch TempDir(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-runner-tests", $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return new Scratch(dir);
    }

    public sealed class Scratch(string path) : IDisposable
    {
        public string Path { get; } = path;

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
                // A kernel process may still hold a file for a moment; the folder is under the temp directory.
            }
        }
    }

    /// <summary>`lab ARGS` through the real command line, in this process (the kernel is still a child process).</summary>
    public static Task<int> Lab(params string[] args) => LabCli.RunAsync(args);

    /// <summary>
    /// `lab ARGS` as its own process, started as the runner starts its kernel: what it prints and its exit code are
    /// exactly what a user sees.
    /// </summary>
    public static Task<ProcessResult> LabProcessAsync(TimeSpan timeout, params string[] args)
    {
        var (dotnet, prefix) = LabRunner.Notebooks.KernelClient.KernelCommandLine();
        return ProcessRunner.RunAsync(dotnet, [.. prefix, .. args], new ProcessOptions { Check = false, Timeout = timeout });
    }

    public static JsonObject ReadJson(string path) => (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;

    public static List<JsonObject> Cells(JsonObject notebook) => notebook["cells"]!.AsArray().Select(c => c!.AsObject()).ToList();

    public static string Source(JsonObject cell) => LabRunner.Notebooks.NotebookReader.ReadSource(cell["source"]) ?? "";

    public static string Text(JsonNode? node) => LabRunner.Notebooks.NotebookReader.ReadSource(node) ?? node?.ToString() ?? "";

    public static string? Status(JsonObject cell) => cell["metadata"]?["lab"]?["status"]?.GetValue<string>();

    /// <summary>
    /// Validates a notebook with Debian's python3-nbformat, the reference implementation of the nbformat schema.
    /// Returns the validator's complaint, or null when the notebook is valid.
    /// </summary>
    public static async Task<string?> NbformatErrorAsync(string path)
    {
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var r = await ProcessRunner.RunAsync(python,
            ["-c", "import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", path],
            new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(1) });
        return r.Succeeded ? null : r.StandardError.Trim() + r.StandardOutput.Trim();
    }

    public static async Task AssertValidNotebookAsync(string path)
    {
        Assert.True(File.Exists(path), $"{path} was not written");
        var error = await NbformatErrorAsync(path);
        Assert.True(error is null, $"nbformat rejects {path}: {error}");
    }

    /// <summary>The DOM of an HTML file after headless Chromium ran its scripts (with a virtual-time budget).</summary>
    public static async Task<string> RenderedDomAsync(string htmlPath)
    {
        var chromium = ProcessRunner.Which("chromium") ?? ProcessRunner.Which("chromium-browser")
            ?? throw new InvalidOperationException("chromium is not installed (apt-get install -y chromium)");
        var profile = Directory.CreateTempSubdirectory("lab-chromium-");
        try
        {
            var r = await ProcessRunner.RunAsync(chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                $"--user-data-dir={profile.FullName}", "--dump-dom", "--virtual-time-budget=5000",
                new Uri(htmlPath).AbsoluteUri,
            ], new ProcessOptions { Timeout = TimeSpan.FromMinutes(2) });
            return r.StandardOutput;
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LabNotebooks.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (LabNotebooks.sln) above " + AppContext.BaseDirectory);
    }
}
