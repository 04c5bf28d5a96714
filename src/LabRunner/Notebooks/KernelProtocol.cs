using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabRunner.Notebooks;

/// <summary>
/// The JSON lines the runner (parent) and its kernel process (<c>lab __kernel</c>) exchange over the kernel's
/// stdin and stdout, one object per line with a <c>type</c>:
/// parent to kernel: <c>init</c> {baseDirectory, scriptPath, args, scriptMode}, <c>execute</c> {code};
/// kernel to parent: <c>ready</c>, <c>stream</c> {name, text}, <c>display</c> {data, displayId, update},
/// <c>result</c> {data}, <c>log</c> {text}, <c>done</c> {status, ename, evalue, traceback, returnValue}.
/// A line that is not such an object is stray output of the cell (something wrote to fd 1 directly).
/// </summary>
internal static class KernelProtocol
{
    public const string Init = "init";
    public const string Execute = "execute";
    public const string Ready = "ready";
    public const string Stream = "stream";
    public const string Display = "display";
    public const string Result = "result";
    public const string Log = "log";
    public const string Done = "done";

    public static string Serialize(JsonObject message) => message.ToJsonString(new JsonSerializerOptions { WriteIndented = false });

    public static JsonObject? TryParse(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        try
        {
            return JsonNode.Parse(line) is JsonObject o && o["type"] is JsonValue ? o : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static string TypeOf(JsonObject message) => message["type"]?.GetValue<string>() ?? "";
}
