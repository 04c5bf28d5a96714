using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Directives;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace LabRunner.Interactive;

/// <summary>What one cell produced, in the order the kernel published it.</summary>
internal interface ICellSink
{
    void Stream(string name, string text);

    /// <summary>A displayed value; <paramref name="update"/> replaces the earlier display with the same id.</summary>
    void Display(string displayId, JsonObject data, bool update);

    void Result(JsonObject data);
}

/// <summary>How a cell ended in the kernel.</summary>
internal sealed record CellOutcome(bool Succeeded, string? ErrorName, string? ErrorValue, IReadOnlyList<string> Traceback);

/// <summary>
/// Where <c>lab run</c> runs notebooks on .NET Interactive (Microsoft.DotNet.Interactive, the engine of VS Code's Polyglot
/// Notebooks; deprecated and archived, pinned at its final release 1.0.0-beta.26120.1; this folder is the only code that
/// touches it, with DibDocument reading .dib files and ScriptPackages restoring a .csx's packages): a <see cref="CompositeKernel"/>
/// with the real <see cref="CSharpKernel"/>, set up as the dotnet-interactive tool sets it up for VS Code and Jupyter:
/// <c>#r "nuget:"</c> and <c>#i</c> restored by the kernel's own NuGet support, the kernel helpers (<c>display</c>,
/// <c>HTML</c>), <c>#!who</c>/<c>#!whos</c>, <c>#!set</c> and <c>#!share</c>, <c>#!import</c>, the <c>value</c> kernel for
/// <c>#!value</c>, and <c>#!time</c>, with HTML as the default display format as in a notebook front end.
/// </summary>
internal sealed class PolyglotKernel : IDisposable
{
    private static readonly HashSet<string> LoadedExtensions = new(StringComparer.Ordinal);
    private readonly CompositeKernel _root;
    private ICellSink? _sink;
    private readonly IDisposable _subscription;

    public PolyglotKernel()
    {
        var csharp = new CSharpKernel()
            .UseNugetDirective(static async (kernel, references) =>
            {
                var resolved = references.ToList();
                kernel.AddAssemblyReferences(resolved.SelectMany(r => r.AssemblyPaths));
                // As VS Code's host does: a package may carry interactive-extensions/dotnet/extension.dib, which the
                // kernel runs once the package is loaded (LabNotebooks registers its formatters that way).
                foreach (var r in resolved)
                {
                    var script = new FileInfo(Path.Combine(r.PackageRoot ?? "", "interactive-extensions", "dotnet", "extension.dib"));
                    if (!string.IsNullOrEmpty(r.PackageRoot) && script.Exists && LoadedExtensions.Add(script.FullName))
                    {
                        await (kernel.RootKernel ?? kernel).LoadAndRunInteractiveDocument(script).ConfigureAwait(false);
                    }
                }
            }, false)
            .UseKernelHelpers()
            .UseWho()
            .UseValueSharing()
            .UseImportMagicCommand();
        _root = new CompositeKernel();
        _root.Add(csharp, ["c#", "C#"]);
        _root.Add(new KeyValueStoreKernel().UseWho());
        _root.DefaultKernelName = csharp.Name;
        _root.AddDirective(new KernelActionDirective("#!time", "Time the execution of the current cell"), (_, context) =>
        {
            var clock = Stopwatch.StartNew();
            // As the dotnet-interactive tool does: shown after the cell's own outputs.
            context.OnComplete(c => c.DisplayAs($"Wall time: {clock.Elapsed.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms", "text/plain"));
            return Task.CompletedTask;
        });
        // A notebook front end (VS Code, Jupyter) shows objects as HTML and strings as plain text.
        Formatter.DefaultMimeType = "text/html";
        _subscription = _root.KernelEvents.Subscribe(new EventObserver(this));
    }

    /// <summary>Loads Roslyn and the kernel's services with a throwaway submission, so the first cell does not pay for it.</summary>
    public Task WarmUpAsync() => _root.SendAsync(new SubmitCode("0;", "csharp"));

    public async Task<CellOutcome> RunAsync(string code, ICellSink sink)
    {
        _sink = sink;
        try
        {
            var result = await _root.SendAsync(new SubmitCode(code)).ConfigureAwait(false);
            var failed = result.Events.OfType<CommandFailed>().LastOrDefault(f => f.Command == result.Command)
                ?? (result.Events.LastOrDefault() as CommandFailed);
            if (failed is null)
            {
                return new CellOutcome(true, null, null, []);
            }
            var compileError = failed.Exception?.GetType().Name == "CodeSubmissionCompilationErrorException";
            var name = failed.Exception is null ? "Error" : compileError ? "CompilationError" : failed.Exception.GetType().Name;
            var lines = failed.Message.ReplaceLineEndings("\n").Split('\n').Where(l => l.Length > 0).ToList();
            // A compile error's message is its diagnostics; an exception's value is its message, as Jupyter shows it.
            var value = failed.Exception is { } ex && !compileError ? ex.Message : string.Join('\n', lines);
            return new CellOutcome(false, name, value, lines);
        }
        finally
        {
            _sink = null;
        }
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _root.Dispose();
    }

    private void OnEvent(KernelEvent e)
    {
        if (_sink is not { } sink)
        {
            return;
        }
        switch (e)
        {
            case StandardOutputValueProduced o:
                sink.Stream("stdout", PlainText(o));
                break;
            case StandardErrorValueProduced o:
                sink.Stream("stderr", PlainText(o));
                break;
            case ErrorProduced o:
                // Restore failures and similar: text the kernel shows in red, the cell's failure follows.
                sink.Stream("stderr", o.Message + "\n");
                break;
            case ReturnValueProduced r:
                sink.Result(Bundle(r));
                break;
            case DisplayedValueUpdated u:
                sink.Display(u.ValueId ?? "", Bundle(u), update: true);
                break;
            case DisplayedValueProduced d:
                sink.Display(d.ValueId ?? Guid.NewGuid().ToString("N"), Bundle(d), update: false);
                break;
        }
    }

    private static string PlainText(DisplayEvent e) =>
        e.FormattedValues.FirstOrDefault(v => v.MimeType == "text/plain")?.Value ?? e.FormattedValues.FirstOrDefault()?.Value ?? "";

    private static JsonObject Bundle(DisplayEvent e)
    {
        var data = new JsonObject();
        foreach (var v in e.FormattedValues)
        {
            data[v.MimeType] = v.MimeType.EndsWith("json", StringComparison.Ordinal) && TryParse(v.Value) is { } json ? json : v.Value;
        }
        return data;
    }

    private static JsonNode? TryParse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private sealed class EventObserver(PolyglotKernel owner) : IObserver<KernelEvent>
    {
        public void OnCompleted()
        {
        }

        public void OnError(Exception error)
        {
        }

        public void OnNext(KernelEvent value) => owner.OnEvent(value);
    }
}
