using System.Text.Json.Nodes;

namespace LabRunner.Notebooks;

/// <summary>What a cell holds.</summary>
public enum CellKind
{
    Code,
    Markdown,
    Raw,
}

/// <summary>
/// A notebook as <c>lab run</c> sees it, whatever file it came from (.ipynb, .dib, .csx): cells in order and the
/// notebook metadata, kept as JSON so that fields the lab does not know survive a run.
/// </summary>
public sealed class Notebook
{
    public Notebook(string sourcePath, NotebookFormat format, JsonObject metadata, List<NotebookCell> cells)
    {
        SourcePath = sourcePath;
        Format = format;
        Metadata = metadata;
        Cells = cells;
    }

    public string SourcePath { get; }

    public NotebookFormat Format { get; }

    public JsonObject Metadata { get; }

    public List<NotebookCell> Cells { get; }

    /// <summary>The lab's own notebook metadata (<c>metadata.lab</c>), created on first use.</summary>
    public JsonObject LabMetadata => Child(Metadata, "lab");

    internal static JsonObject Child(JsonObject parent, string name)
    {
        if (parent[name] is JsonObject o)
        {
            return o;
        }
        var created = new JsonObject();
        parent[name] = created;
        return created;
    }

    /// <summary>Gives every cell a unique nbformat 4.5 id, keeping valid ids it already has.</summary>
    public void EnsureCellIds()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cell in Cells)
        {
            if (!NotebookCell.IsValidId(cell.Id) || !seen.Add(cell.Id))
            {
                string id;
                do
                {
                    id = Guid.NewGuid().ToString("N")[..12];
                }
                while (!seen.Add(id));
                cell.Id = id;
            }
        }
    }
}

/// <summary>Where a notebook came from.</summary>
public enum NotebookFormat
{
    Ipynb,
    Dib,
    Csx,
}

/// <summary>One cell: source, metadata, and after a run its outputs and execution count.</summary>
public sealed class NotebookCell
{
    public NotebookCell(CellKind kind, string source, string? language, JsonObject? metadata = null, string? id = null)
    {
        Kind = kind;
        Source = source;
        Language = language;
        Metadata = metadata ?? [];
        Id = id ?? "";
    }

    public string Id { get; set; }

    public CellKind Kind { get; }

    public string Source { get; set; }

    /// <summary>The cell's kernel: <c>csharp</c>, <c>fsharp</c>, <c>pwsh</c>, ... Null for markdown and raw cells.</summary>
    public string? Language { get; set; }

    public JsonObject Metadata { get; }

    public JsonObject? Attachments { get; set; }

    public List<JsonObject> Outputs { get; } = [];

    public int? ExecutionCount { get; set; }

    /// <summary>The lab's per-cell metadata (<c>metadata.lab</c>): start, end, duration, status.</summary>
    public JsonObject LabMetadata => Notebook.Child(Metadata, "lab");

    public IReadOnlyList<string> Tags =>
        Metadata["tags"] is JsonArray a ? a.Select(t => t?.GetValueKind() == System.Text.Json.JsonValueKind.String ? t.GetValue<string>() : "").ToList() : [];

    public bool HasTag(string tag) => Tags.Contains(tag, StringComparer.Ordinal);

    /// <summary>The first non-blank line of the source, for progress displays.</summary>
    public string FirstLine =>
        Source.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";

    internal static bool IsValidId(string id) =>
        id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
