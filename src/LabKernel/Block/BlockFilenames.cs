using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabKernel.Block;

/// <summary>
/// The file a QEMU node's filename names. QEMU describes a format node whose image header names its backing file
/// otherwise than the node it was opened with (a relative name, as <c>qemu-img create -b base.qcow2</c> writes
/// it, under a chain libvirt opened by absolute path) with a <c>json:{...}</c> pseudo-filename; the layer's own
/// file is that description's <c>file.filename</c>. Chains, the lab's files and qemu-img all want the path.
/// </summary>
internal static class BlockFilenames
{
    /// <summary>
    /// <paramref name="name"/> itself, or for a <c>json:</c> pseudo-filename whose <c>file</c> is a plain file
    /// (<c>{"driver": "file", "filename": PATH}</c>) that PATH. Anything else (another protocol, unreadable JSON)
    /// comes back unchanged.
    /// </summary>
    public static string? Plain(string? name)
    {
        if (name is null || !name.StartsWith("json:", StringComparison.Ordinal))
        {
            return name;
        }
        try
        {
            return JsonNode.Parse(name["json:".Length..]) is JsonObject o
                && o["file"] is JsonObject file
                && file["driver"]?.GetValue<string>() == "file"
                && file["filename"]?.GetValue<string>() is { Length: > 0 } path
                ? path
                : name;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return name;
        }
    }
}
