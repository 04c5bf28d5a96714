using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabRunner.Notebooks;

/// <summary>
/// Writes a <see cref="Notebook"/> as nbformat 4.5 JSON (cell ids, execution counts, outputs), indented by one
/// space with sources split into lines, as Jupyter and VS Code write it. Saves go through a temporary file and a
/// rename, so a run killed at any moment leaves the previous complete notebook.
/// </summary>
public static class NotebookWriter
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        IndentSize = 1,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static JsonObject ToJson(Notebook notebook)
    {
        notebook.EnsureCellIds();
        var cells = new JsonArray();
        foreach (var cell in notebook.Cells)
        {
            var o = new JsonObject
            {
                ["cell_type"] = cell.Kind switch { CellKind.Code => "code", CellKind.Markdown => "markdown", _ => "raw" },
            };
            if (cell.Kind == CellKind.Code)
            {
                o["execution_count"] = cell.ExecutionCount;
            }
            o["id"] = cell.Id;
            o["metadata"] = cell.Metadata.DeepClone();
            if (cell.Kind == CellKind.Code)
            {
                o["outputs"] = new JsonArray(cell.Outputs.Select(x => (JsonNode)NormalizeOutput(x)).ToArray());
            }
            else if (cell.Attachments is not null)
            {
                o["attachments"] = cell.Attachments.DeepClone();
            }
            o["source"] = Lines(cell.Source);
            cells.Add(o);
        }
        var metadata = (JsonObject)notebook.Metadata.DeepClone();
        metadata["kernelspec"] ??= new JsonObject { ["display_name"] = ".NET (C#)", ["language"] = "C#", ["name"] = ".net-csharp" };
        metadata["language_info"] ??= new JsonObject { ["name"] = "polyglot-notebook" };
        return new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = metadata,
            ["nbformat"] = 4,
            ["nbformat_minor"] = 5,
        };
    }

    public static string ToText(Notebook notebook) => ToJson(notebook).ToJsonString(Options) + "\n";

    /// <summary>Writes atomically: a temporary file in the same folder, then a rename over <paramref name="path"/>.</summary>
    public static void Save(Notebook notebook, string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, ToText(notebook), new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>Splits text into lines that keep their "\n", the way nbformat stores multi-line strings.</summary>
    public static JsonArray Lines(string text)
    {
        var result = new JsonArray();
        var start = 0;
        while (start < text.Length)
        {
            var nl = text.IndexOf('\n', start);
            var end = nl < 0 ? text.Length : nl + 1;
            result.Add(text[start..end]);
            start = end;
        }
        return result;
    }

    private static JsonObject NormalizeOutput(JsonObject output)
    {
        var o = (JsonObject)output.DeepClone();
        // Jupyter stores text mime types and stream text as lists of lines; JSON mime types stay objects.
        if (o["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String)
        {
            o["text"] = Lines(t.GetValue<string>());
        }
        if (o["data"] is JsonObject data)
        {
            foreach (var key in data.Select(kv => kv.Key).ToList())
            {
                if (!key.EndsWith("json", StringComparison.Ordinal) && data[key] is JsonValue dv && dv.GetValueKind() == JsonValueKind.String)
                {
                    data[key] = Lines(dv.GetValue<string>());
                }
            }
        }
        o.Remove("transient");
        return o;
    }
}
