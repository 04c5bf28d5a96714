using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel;
using LabRunner.Interactive;

namespace LabRunner.Notebooks;

/// <summary>
/// Reads .ipynb (nbformat 4, as VS Code's Polyglot Notebooks saves it), .dib (Polyglot's plain-text format:
/// <c>#!csharp</c>, <c>#!markdown</c>, <c>#!meta</c>, read by Polyglot's own parser) and .csx (one C# script, dotnet-script syntax) into a
/// <see cref="Notebook"/>. Problems with the file are <see cref="LabUsageException"/>s naming the file.
/// </summary>
public static class NotebookReader
{
    public static Notebook Read(string path)
    {
        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".ipynb" => NotebookFormat.Ipynb,
            ".dib" => NotebookFormat.Dib,
            ".csx" => NotebookFormat.Csx,
            var e => throw new LabUsageException($"{path}: unknown notebook type '{e}' (expected .ipynb, .dib or .csx)"),
        };
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LabUsageException($"cannot read {path}: {e.Message}");
        }
        return format switch
        {
            NotebookFormat.Ipynb => ParseIpynb(path, text),
            NotebookFormat.Dib => ParseDib(path, text),
            _ => ParseCsx(path, text),
        };
    }

    public static Notebook ParseIpynb(string path, string text)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new LabUsageException($"{path} is not a valid notebook: not JSON ({OneLine(e.Message)})");
        }
        if (root is not JsonObject nb)
        {
            throw Invalid(path, "the top level is not a JSON object");
        }
        var major = nb["nbformat"] is JsonValue v && v.TryGetValue<int>(out var m) ? m : -1;
        if (major != 4)
        {
            throw Invalid(path, major < 0 ? "no nbformat version" : $"nbformat {major} is not supported (only 4)");
        }
        if (nb["cells"] is not JsonArray cellsJson)
        {
            throw Invalid(path, "no \"cells\" array");
        }
        var metadata = nb["metadata"] as JsonObject ?? [];
        nb.Remove("metadata");
        var defaultLanguage = DefaultLanguage(metadata);
        var cells = new List<NotebookCell>();
        var index = 0;
        foreach (var c in cellsJson)
        {
            index++;
            if (c is not JsonObject cell)
            {
                throw Invalid(path, $"cell {index} is not an object");
            }
            var kind = (cell["cell_type"] as JsonValue)?.GetValueKind() == JsonValueKind.String ? cell["cell_type"]!.GetValue<string>() : null;
            var cellKind = kind switch
            {
                "code" => CellKind.Code,
                "markdown" => CellKind.Markdown,
                "raw" => CellKind.Raw,
                _ => throw Invalid(path, $"cell {index} has cell_type '{kind}'"),
            };
            var source = ReadSource(cell["source"]) ?? throw Invalid(path, $"cell {index} has no source (a string or a list of strings)");
            var cellMeta = cell["metadata"] as JsonObject ?? [];
            cell.Remove("metadata");
            string? language = null;
            if (cellKind == CellKind.Code)
            {
                language = Languages.Normalize(
                    ((cellMeta["polyglot_notebook"] as JsonObject)?["kernelName"] as JsonValue)?.ToString()
                    ?? ((cellMeta["dotnet_interactive"] as JsonObject)?["language"] as JsonValue)?.ToString()
                    ?? defaultLanguage);
            }
            // A first line such as #!fsharp switches the cell's kernel, as in Polyglot Notebooks.
            var firstLine = source.Split('\n')[0].Trim();
            if (cellKind == CellKind.Code && firstLine.StartsWith("#!", StringComparison.Ordinal)
                && Languages.KnownKernels.Contains(firstLine[2..], StringComparer.OrdinalIgnoreCase) && firstLine[2..] is not ("meta" or "value"))
            {
                language = Languages.Normalize(firstLine[2..]);
            }
            var id = cell["id"] is JsonValue idv && idv.GetValueKind() == JsonValueKind.String ? idv.GetValue<string>() : null;
            var nc = new NotebookCell(cellKind, source, language, cellMeta, id);
            if (cell["attachments"] is JsonObject att)
            {
                cell.Remove("attachments");
                nc.Attachments = att;
            }
            if (cellKind == CellKind.Code)
            {
                if (cell["outputs"] is JsonArray outputs)
                {
                    foreach (var o in outputs.OfType<JsonObject>())
                    {
                        nc.Outputs.Add((JsonObject)o.DeepClone());
                    }
                }
                nc.ExecutionCount = cell["execution_count"] is JsonValue ec && ec.TryGetValue<int>(out var n) ? n : null;
            }
            cells.Add(nc);
        }
        return new Notebook(path, NotebookFormat.Ipynb, metadata, cells);
    }

    /// <summary>
    /// A .dib file, read by Polyglot Notebooks' own parser (<see cref="DibDocument"/>) and mapped to the runner's
    /// cells: <c>#!markdown</c> cells are markdown, every other kernel's cells code in that kernel (only C# runs), and a
    /// code cell whose first line is <c>// parameters</c> is tagged as papermill's parameters cell (.dib has no cell
    /// metadata). The <c>#!meta</c> block becomes the notebook's <c>polyglot_notebook</c> metadata.
    /// </summary>
    public static Notebook ParseDib(string path, string text)
    {
        DibContents dib;
        try
        {
            // Polyglot's parser splits at \n and \r\n only; a lone \r (or another line separator) ends a line too.
            // The closing \n ends a #!meta block at the end of the file, which the parser would otherwise add to the cell above it.
            dib = DibDocument.Parse(text.ReplaceLineEndings("\n") + "\n", Languages.DibKernels, Languages.CSharp);
        }
        catch (DibFormatException e)
        {
            throw Invalid(path, OneLine(e.Message));
        }
        var cells = new List<NotebookCell>();
        foreach (var (kernel, body) in dib.Cells)
        {
            var lang = Languages.Normalize(kernel);
            if (lang == "markdown")
            {
                cells.Add(new NotebookCell(CellKind.Markdown, body, null));
                continue;
            }
            var meta = new JsonObject { ["polyglot_notebook"] = new JsonObject { ["kernelName"] = lang } };
            var first = body.Split('\n').FirstOrDefault(l => l.Trim().Length > 0)?.Trim();
            if (string.Equals(first, "// parameters", StringComparison.OrdinalIgnoreCase))
            {
                meta["tags"] = new JsonArray("parameters");
            }
            cells.Add(new NotebookCell(CellKind.Code, body, lang, meta));
        }
        var metadata = new JsonObject
        {
            ["polyglot_notebook"] = dib.Metadata ?? new JsonObject { ["kernelInfo"] = new JsonObject { ["defaultKernelName"] = Languages.CSharp } },
        };
        return new Notebook(path, NotebookFormat.Dib, metadata, cells);
    }

    /// <summary>A .csx script is one C# cell; <c>#r</c>, <c>#load</c>, <c>Args</c> and <c>return N;</c> work as in dotnet-script.</summary>
    public static Notebook ParseCsx(string path, string text)
    {
        var body = text.ReplaceLineEndings("\n");
        if (body.StartsWith("#!", StringComparison.Ordinal))
        {
            // A shebang line (#!/usr/bin/env dotnet-script) is blanked, keeping line numbers.
            body = body[body.IndexOf('\n') is var i and >= 0 ? i.. : body.Length..];
        }
        var cell = new NotebookCell(CellKind.Code, body, Languages.CSharp, new JsonObject { ["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" } });
        return new Notebook(path, NotebookFormat.Csx, [], [cell]);
    }

    internal static string? ReadSource(JsonNode? node) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonArray a when a.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.String) => string.Concat(a.Select(x => x!.GetValue<string>())),
        _ => null,
    };

    private static string DefaultLanguage(JsonObject metadata) =>
        (((metadata["polyglot_notebook"] as JsonObject)?["kernelInfo"] as JsonObject)?["defaultKernelName"] as JsonValue)?.ToString()
        ?? ((metadata["kernelspec"] as JsonObject)?["language"] as JsonValue)?.ToString()
        ?? ((metadata["kernelspec"] as JsonObject)?["name"] as JsonValue)?.ToString()
        ?? Languages.CSharp;

    /// <summary>
    /// JSON as the lab reads it: a member named twice is an error at parse time. (Left to the default, JsonObject
    /// accepts it and then throws ArgumentException on first access.)
    /// </summary>
    internal static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    /// <summary>A parser's message on one line (System.Text.Json quotes the offending text, newlines included), at most 200 characters.</summary>
    internal static string OneLine(string message)
    {
        var line = message.ReplaceLineEndings(" ");
        return line.Length <= 200 ? line : line[..200] + "…";
    }

    private static LabUsageException Invalid(string path, string why) => new($"{path} is not a valid notebook: {why}");
}
