using System.Text;
using System.Text.Json.Nodes;
using LabRunner.Interactive;
using LabRunner.Notebooks.Scripting;

namespace LabRunner.Notebooks;

/// <summary>
/// The kernel process (<c>lab __kernel</c>): reads an <c>init</c> message, then <c>execute</c> messages from stdin, and
/// answers on stdout (see <see cref="KernelProtocol"/>). Notebook cells (.ipynb, .dib) run on the real C# kernel of
/// Polyglot Notebooks (<see cref="PolyglotKernel"/>); a .csx runs on Roslyn scripting with dotnet-script's semantics
/// (<see cref="ScriptSession"/>). It runs in its own process so that the runner can stop any cell, even a tight loop,
/// by killing it.
/// </summary>
internal static class KernelHost
{
    public static async Task<int> RunAsync()
    {
        // A Ctrl-C or `kill -INT` that reaches the kernel stops the whole run: the runner is told, and stops this
        // kernel (SIGTERM, which runs the exit hooks that quit the guests) instead of the kernel dying under it.
        using var forward = RunInterruption.ForwardToRunner();
        var protocol = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
        var input = new StreamReader(Console.OpenStandardInput(), Encoding.UTF8);
        using var output = new KernelOutput(protocol);
        Console.SetOut(output.Out);
        Console.SetError(output.Error);
        Console.SetIn(TextReader.Null);
        // Figures in the notebook carry no plotly.js; lab reports inline it once.
        Environment.SetEnvironmentVariable("LABKERNEL_PLOTLY_EMBED", "none");

        ScriptSession? script = null;
        PolyglotKernel? notebook = null;
        var scriptMode = false;
        while (await input.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            if (KernelProtocol.TryParse(line) is not { } message)
            {
                continue;
            }
            switch (KernelProtocol.TypeOf(message))
            {
                case KernelProtocol.Init:
                    var args = (message["args"] as JsonArray ?? []).Select(a => a!.GetValue<string>()).ToList();
                    scriptMode = message["scriptMode"]?.GetValue<bool>() ?? false;
                    var baseDir = message["baseDirectory"]!.GetValue<string>();
                    if (message["workingDirectory"]?.GetValue<string>() is { } cwd)
                    {
                        Directory.SetCurrentDirectory(cwd);
                    }
                    if (scriptMode)
                    {
                        script = new ScriptSession(baseDir, message["scriptPath"]?.GetValue<string>(), args,
                            text => output.Send(new JsonObject { ["type"] = KernelProtocol.Log, ["text"] = text }));
                        // Roslyn's first compilation costs about a second of JIT; pay it before the runner's clock starts.
                        Microsoft.CodeAnalysis.CSharp.Scripting.CSharpScript.Create("1", Microsoft.CodeAnalysis.Scripting.ScriptOptions.Default).Compile();
                    }
                    else
                    {
                        notebook = new PolyglotKernel();
                        await notebook.WarmUpAsync().ConfigureAwait(false);
                    }
                    output.Send(new JsonObject { ["type"] = KernelProtocol.Ready });
                    break;
                case KernelProtocol.Execute:
                    var code = message["code"]!.GetValue<string>();
                    var done = scriptMode || notebook is null
                        ? await ExecuteScriptAsync(script ??= new ScriptSession(Directory.GetCurrentDirectory(), null, [], _ => { }), code, scriptMode, output).ConfigureAwait(false)
                        : await ExecuteCellAsync(notebook, code, output).ConfigureAwait(false);
                    output.Flush();
                    output.Send(done);
                    break;
            }
        }
        notebook?.Dispose();
        script?.Dispose();
        return 0;
    }

    private static async Task<JsonObject> ExecuteCellAsync(PolyglotKernel kernel, string code, KernelOutput output)
    {
        var outcome = await kernel.RunAsync(code, new ProtocolSink(output)).ConfigureAwait(false);
        return Done(outcome.Succeeded, outcome.ErrorName, outcome.ErrorValue, outcome.Traceback);
    }

    private static async Task<JsonObject> ExecuteScriptAsync(ScriptSession session, string code, bool scriptMode, KernelOutput output)
    {
        var result = await session.ExecuteAsync(code).ConfigureAwait(false);
        output.Flush();
        var done = Done(result.Succeeded, result.ErrorName, result.ErrorValue, result.Traceback);
        // dotnet-script's `return N;` is the exit code; a script's other values are not shown.
        if (result.Succeeded && result.HasReturnValue && scriptMode)
        {
            done["returnValue"] = result.ReturnValue is int exitCode ? exitCode : null;
        }
        return done;
    }

    private static JsonObject Done(bool succeeded, string? ename, string? evalue, IReadOnlyList<string> traceback)
    {
        var done = new JsonObject { ["type"] = KernelProtocol.Done, ["status"] = succeeded ? "ok" : "error" };
        if (!succeeded)
        {
            done["ename"] = ename;
            done["evalue"] = evalue;
            done["traceback"] = new JsonArray(traceback.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
        }
        return done;
    }

    /// <summary>Sends what the real kernel publishes as protocol messages, after anything printed outside it.</summary>
    private sealed class ProtocolSink(KernelOutput output) : ICellSink
    {
        public void Stream(string name, string text)
        {
            output.Flush();
            output.Send(new JsonObject { ["type"] = KernelProtocol.Stream, ["name"] = name, ["text"] = text });
        }

        public void Display(string displayId, JsonObject data, bool update)
        {
            output.Flush();
            output.Send(new JsonObject { ["type"] = KernelProtocol.Display, ["displayId"] = displayId, ["update"] = update, ["data"] = data });
        }

        public void Result(JsonObject data)
        {
            output.Flush();
            output.Send(new JsonObject { ["type"] = KernelProtocol.Result, ["data"] = data });
        }
    }
}
