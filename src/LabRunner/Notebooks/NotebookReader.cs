using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel;

namespace LabRunner.Notebooks;

/// <summary>
/// Reads .ipynb (nbformat 4, as VS Code's Polyglot Notebooks saves it), .dib (Polyglot's plain-text format:
/// <c>#!csharp</c>, <c>#!markdown</c>, <c>#!meta</c>) and .csx (one C# script, dotnet-script syntax) into a
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
    /// A .dib file: an optional <c>#!meta</c> block of JSON, then cells each starting with a line
    /// <c>#!kernelName</c>. Lines starting with <c>#!</c> that are not a known kernel are magic commands inside a cell.
    /// </summary>
    public static Notebook ParseDib(string path, string text)
    {
        var lines = text.ReplaceLineEndings("\n").Split('\n');
        var kernels = new HashSet<string>(Languages.KnownKernels, StringComparer.OrdinalIgnoreCase);
        var metadata = new JsonObject();
        var defaultLanguage = Languages.CSharp;

        // The #!meta block names the notebook's kernels; read it first so its names split cells too.
        var blocks = Split(lines, kernels);
        foreach (var (kernel, body) in blocks.Where(b => b.Kernel == "meta"))
        {
            try
            {
                if (JsonNode.Parse(body, documentOptions: StrictJson) is JsonObject meta)
                {
                    var info = meta["kernelInfo"] as JsonObject;
                    if (info?["defaultKernelName"] is JsonValue dk)
                    {
                        defaultLanguage = Languages.Normalize(dk.ToString());
                    }
                    foreach (var item in (info?["items"] as JsonArray ?? []).OfType<JsonObject>())
                    {
                        if (item["name"] is JsonValue n)
                        {
                            kernels.Add(n.ToString());
                        }
                        foreach (var a in (item["aliases"] as JsonArray ?? []).OfType<JsonValue>())
                        {
                            kernels.Add(a.ToString().TrimStart('#', '!'));
                        }
                    }
                    metadata["polyglot_notebook"] = meta.DeepClone();
                }
            }
            catch (JsonException e)
            {
                throw Invalid(path, $"the #!{kernel} block is not JSON ({OneLine(e.Message)})");
            }
        }
        blocks = Split(lines, kernels);
        if (!blocks.Any(b => b.Kernel is not null and not "meta"))
        {
            // A .dib without any cell marker is one cell in the default kernel, as Polyglot opens it.
            blocks = [.. blocks.Where(b => b.Kernel is null).Select(b => ((string?)defaultLanguage, b.Body))];
        }
        var cells = new List<NotebookCell>();
        foreach (var (kernel, body) in blocks)
        {
            if (kernel is null or "meta")
            {
                continue;
            }
            var lang = Languages.Normalize(kernel);
            if (lang == "markdown")
            {
                cells.Add(new NotebookCell(CellKind.Markdown, body, null));
                continue;
            }
            var meta = new JsonObject { ["polyglot_notebook"] = new JsonObject { ["kernelName"] = lang } };
            // .dib has no cell metadata; a first line "// parameters" tags the papermill parameters cell.
            var first = body.Split('\n')[0].Trim();
            if (first.Equals("// parameters", StringComparison.OrdinalIgnoreCase))
            {
                meta["tags"] = new JsonArray("parameters");
            }
            cells.Add(new NotebookCell(CellKind.Code, body, lang, meta));
        }
        metadata["polyglot_notebook"] ??= new JsonObject { ["kernelInfo"] = new JsonObject { ["defaultKernelName"] = defaultLanguage } };
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

    private static List<(string? Kernel, string Body)> Split(string[] lines, HashSet<string> kernels)
    {
        var result = new List<(string?, string)>();
        string? current = null;
        var buffer = new List<string>();
        var started = false;
        void Flush()
        {
            if (started || buffer.Any(l => l.Trim().Length > 0))
            {
                result.Add((current, string.Join('\n', Trim(buffer))));
            }
            buffer.Clear();
        }
        foreach (var line in lines)
        {
            if (line.StartsWith("#!", StringComparison.Ordinal) && kernels.Contains(line[2..].Trim()))
            {
                Flush();
                current = line[2..].Trim().ToLowerInvariant();
                started = true;
                continue;
            }
            buffer.Add(line);
        }
        Flush();
        return result;
    }

    private static IEnumerable<string> Trim(List<string> lines)
    {
        var start = lines.FindIndex(l => l.Trim().Length > 0);
        if (start < 0)
        {
            return [];
        }
        var end = lines.FindLastIndex(l => l.Trim().Length > 0);
        return lines.Skip(start).Take(end - start + 1);
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
