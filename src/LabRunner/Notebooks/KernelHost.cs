using System.Text;
using System.Text.Json.Nodes;
using LabRunner.Notebooks.Scripting;

namespace LabRunner.Notebooks;

/// <summary>
/// The kernel process (<c>lab __kernel</c>): reads <c>init</c> and <c>execute</c> messages from stdin, runs
/// each cell in one <see cref="ScriptSession"/>, and answers on stdout (see <see cref="KernelProtocol"/>).
/// It runs in its own process so that the runner can stop any cell, even a tight loop, by killing it.
/// </summary>
internal static class KernelHost
{
    public static async Task<int> RunAsync()
    {
        var protocol = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
        var input = new StreamReader(Console.OpenStandardInput(), Encoding.UTF8);
        using var output = new KernelOutput(protocol);
        Console.SetOut(output.Out);
        Console.SetError(output.Error);
        Console.SetIn(TextReader.Null);
        // Figures in the notebook carry no plotly.js; lab reports inline it once.
        Environment.SetEnvironmentVariable("LABKERNEL_PLOTLY_EMBED", "none");

        ScriptSession? session = null;
        var scriptMode = false;
        // Roslyn's first compilation costs about a second of JIT; start it now, while the runner prepares
        // the first cell, instead of after. It compiles a throwaway script and touches no notebook state.
        _ = Task.Run(() => Microsoft.CodeAnalysis.CSharp.Scripting.CSharpScript.Create("1", Microsoft.CodeAnalysis.Scripting.ScriptOptions.Default).Compile());
        output.Send(new JsonObject { ["type"] = KernelProtocol.Ready });
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
                    session = new ScriptSession(baseDir, message["scriptPath"]?.GetValue<string>(), args,
                        text => output.Send(new JsonObject { ["type"] = KernelProtocol.Log, ["text"] = text }));
                    break;
                case KernelProtocol.Execute:
                    session ??= new ScriptSession(Directory.GetCurrentDirectory(), null, [], _ => { });
                    var result = await session.ExecuteAsync(message["code"]!.GetValue<string>()).ConfigureAwait(false);
                    output.Flush();
                    var done = new JsonObject { ["type"] = KernelProtocol.Done, ["status"] = result.Succeeded ? "ok" : "error" };
                    if (result.Succeeded && result.HasReturnValue)
                    {
                        if (scriptMode)
                        {
                            done["returnValue"] = result.ReturnValue is int code ? code : null;
                        }
                        else
                        {
                            output.Send(new JsonObject { ["type"] = KernelProtocol.Result, ["data"] = DisplayFormatter.Format(result.ReturnValue) });
                        }
                    }
                    if (!result.Succeeded)
                    {
                        done["ename"] = result.ErrorName;
                        done["evalue"] = result.ErrorValue;
                        done["traceback"] = new JsonArray(result.Traceback.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
                    }
                    output.Send(done);
                    break;
            }
        }
        return 0;
    }
}
