using System.Text.Json;
using System.Text.Json.Nodes;
using LabRunner.Notebooks;

namespace LabRunner.Notebooks;

/// <summary>A JSON MIME value (a plotly figure, the lab's findings) as the hosts save it.</summary>
internal static class MimeJson
{
    /// <summary>
    /// The value as a JSON object: nbformat stores it as an object (lab run, Jupyter), the .NET Interactive kernel and
    /// dotnet-repl hand it over as JSON text, one string or the list of lines nbformat allows. Null for anything else.
    /// </summary>
    public static JsonObject? AsObject(JsonNode? node)
    {
        if (node is JsonObject o)
        {
            return o;
        }
        var text = node is JsonValue or JsonArray ? NotebookReader.ReadSource(node) ?? node.ToString() : null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        try
        {
            return JsonNode.Parse(text, documentOptions: NotebookReader.StrictJson) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
