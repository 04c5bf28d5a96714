using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive.Documents;

namespace LabRunner.Interactive;

/// <summary>One cell of a .dib file as Polyglot Notebooks reads it: the kernel's name (an alias resolved) and its text.</summary>
internal sealed record DibCell(string KernelName, string Contents);

/// <summary>A .dib file read: its cells in order, and its <c>#!meta</c> block (null when it has none).</summary>
internal sealed record DibContents(IReadOnlyList<DibCell> Cells, JsonObject? Metadata);

/// <summary>A .dib file that Polyglot's parser refuses (its <c>#!meta</c> block is not metadata); the message says why.</summary>
internal sealed class DibFormatException(string message) : Exception(message);

/// <summary>
/// Reads .dib files with Polyglot Notebooks' own parser (<see cref="CodeSubmission"/> of
/// Microsoft.DotNet.Interactive.Documents, the library VS Code's notebook parser server runs), so a .dib splits into
/// the cells VS Code shows: a cell starts at a line <c>#!name</c> naming a known kernel or alias exactly (other
/// <c>#!</c> lines are magic commands inside the cell), the first <c>#!meta</c> block is JSON metadata whose
/// <c>kernelInfo</c> declares more kernels, text before the first kernel line is a cell of the default kernel, and
/// empty lines around a cell are dropped.
/// </summary>
internal static class DibDocument
{
    /// <param name="text">The file's text, its line endings already <c>\n</c>.</param>
    /// <param name="kernels">The kernels a cell may start with besides those the <c>#!meta</c> block declares.</param>
    /// <param name="defaultKernel">The kernel of text before the first kernel line.</param>
    public static DibContents Parse(string text, IEnumerable<(string Name, string[] Aliases)> kernels, string defaultKernel)
    {
        var known = new KernelInfoCollection { DefaultKernelName = defaultKernel };
        foreach (var (name, aliases) in kernels)
        {
            known.Add(new KernelInfo(name, aliases: aliases));
        }
        InteractiveDocument document;
        try
        {
            document = CodeSubmission.Parse(text, known);
        }
        catch (JsonException e)
        {
            throw new DibFormatException($"the #!meta block is not JSON metadata ({e.Message})");
        }
        catch (ArgumentException e)
        {
            // KernelInfo refuses a blank or '#' name; KernelInfoCollection a name or alias declared twice.
            throw new DibFormatException($"the #!meta block declares a kernel Polyglot refuses ({e.Message})");
        }
        var cells = document.Elements
            .Where(e => e.Contents.Length > 0) // the empty cell the parser makes for an empty file
            .Select(e => new DibCell(e.KernelName ?? defaultKernel, e.Contents))
            .ToList();
        try
        {
            return new DibContents(cells, document.Metadata.Count > 0 ? ToJson(document.Metadata) : null);
        }
        catch (JsonException e)
        {
            throw new DibFormatException($"the #!meta block is not JSON metadata ({e.Message})");
        }
    }

    /// <summary>The parsed metadata as JSON: kernelInfo as Polyglot writes it, the other members as they were in the file.</summary>
    private static JsonObject ToJson(IDictionary<string, object> metadata)
    {
        var json = new JsonObject();
        foreach (var (key, value) in metadata)
        {
            json[key] = value switch
            {
                KernelInfoCollection infos => new JsonObject
                {
                    ["defaultKernelName"] = infos.DefaultKernelName,
                    ["items"] = new JsonArray([.. infos.Select(Item)]),
                },
                // A member named twice is refused here, not left to throw when the writer reads it.
                JsonElement element => JsonNode.Parse(element.GetRawText(), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }),
                null => null,
                var other => JsonValue.Create(other.ToString()),
            };
        }
        return json;
    }

    /// <summary>One kernel as Polyglot writes it in <c>kernelInfo.items</c>.</summary>
    private static JsonNode Item(KernelInfo info)
    {
        var item = new JsonObject { ["aliases"] = new JsonArray([.. info.Aliases.Select(a => (JsonNode?)JsonValue.Create(a))]) };
        if (info.LanguageName is not null)
        {
            item["languageName"] = info.LanguageName;
        }
        item["name"] = info.Name;
        return item;
    }
}
