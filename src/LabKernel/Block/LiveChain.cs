using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Images;

namespace LabKernel.Block;

/// <summary>One layer of a disk's chain as the running QEMU sees it.</summary>
/// <param name="NodeName">The format node's name (auto-named <c>#block123</c> for layers QEMU opened from headers).</param>
/// <param name="Filename">The file QEMU opened for this layer.</param>
/// <param name="Format">Format driver (qcow2, raw).</param>
/// <param name="BackingFilename">The backing name written in this layer's header, null at the base.</param>
public sealed record LiveLayer(string NodeName, string Filename, string Format, string? BackingFilename)
{
    public string Name => Path.GetFileName(Filename);
}

/// <summary>
/// A disk's backing chain from QEMU's live view (<c>query-block</c> for the files, <c>query-named-block-nodes</c>
/// for the node names), active layer first.
/// </summary>
/// <param name="Disk">The disk's name (the node name it was started with, e.g. <c>disk0</c>).</param>
/// <param name="Device">The qdev path QEMU reports for the device.</param>
/// <param name="Layers">Active first, base last.</param>
public sealed record LiveChain(string Disk, string Device, IReadOnlyList<LiveLayer> Layers)
{
    public LiveLayer Active => Layers[0];
    public LiveLayer Base => Layers[^1];
    public int Count => Layers.Count;

    /// <summary>Layer file names, active first: the input of <see cref="BackingChain.Compare"/>.</summary>
    public IReadOnlyList<string> Filenames => Layers.Select(l => l.Filename).ToArray();

    /// <summary>
    /// The chain's files are exactly <paramref name="activeToBase"/>, in that order (ordinal, full paths as QEMU reports
    /// them): notebook 02's "the live chain is base &lt;- overlay1 &lt;- overlay3". False for a chain that still lists a
    /// committed layer, misses one, or has them in another order.
    /// </summary>
    public bool IsExactly(IEnumerable<string> activeToBase) => Filenames.SequenceEqual(activeToBase);

    /// <summary>Finds a layer by node name, full path or file name; null when none matches.</summary>
    public LiveLayer? Find(string nodeOrFile) =>
        Layers.FirstOrDefault(l => l.NodeName == nodeOrFile)
        ?? Layers.FirstOrDefault(l => l.Filename == nodeOrFile || (Path.IsPathRooted(nodeOrFile) && l.Filename == Path.GetFullPath(nodeOrFile)))
        ?? Layers.FirstOrDefault(l => !nodeOrFile.Contains('/') && l.Name == nodeOrFile);

    /// <summary>Depth of a layer (0 = active), -1 when absent.</summary>
    public int DepthOf(LiveLayer layer) => Layers.ToList().IndexOf(layer);

    /// <summary><c>base.qcow2 &lt;- overlay1.qcow2 &lt;- overlay2.qcow2 (active)</c>, the same form as <see cref="BackingChain.ToText"/>.</summary>
    public string ToText() =>
        string.Join(" <- ", Layers.Reverse().Select(l => l.Name)) + " (active)";

    public override string ToString() => ToText();

    /// <summary>
    /// Builds the chain of the device whose qdev id is <paramref name="deviceId"/> (or whose root node is
    /// <paramref name="disk"/>) from the replies of <c>query-block</c> and <c>query-named-block-nodes</c>.
    /// </summary>
    internal static LiveChain? FromQmp(string disk, string deviceId, JsonArray queryBlock, IEnumerable<JsonNode?> namedNodes)
    {
        var entry = queryBlock.OfType<JsonObject>().FirstOrDefault(b => MatchesDevice(b, disk, deviceId));
        if (entry?["inserted"] is not JsonObject inserted)
        {
            return null;
        }
        var nodes = namedNodes.OfType<JsonObject>().ToList();
        var layers = new List<LiveLayer>();
        var nodeName = inserted["node-name"]?.GetValue<string>();
        var image = inserted["image"] as JsonObject;
        while (image is not null)
        {
            var file = BlockFilenames.Plain(image["filename"]?.GetValue<string>()) ?? "";
            var format = image["format"]?.GetValue<string>() ?? "";
            var name = nodeName ?? FindFormatNode(nodes, file, format) ?? "";
            layers.Add(new LiveLayer(name, file, format, image["backing-filename"]?.GetValue<string>()));
            // The next layer's node is the backing of this node in query-named-block-nodes.
            nodeName = null;
            image = image["backing-image"] as JsonObject;
        }
        var qdev = entry["qdev"]?.GetValue<string>() ?? entry["device"]?.GetValue<string>() ?? deviceId;
        return new LiveChain(disk, qdev, layers);
    }

    internal static bool MatchesDevice(JsonObject b, string disk, string deviceId)
    {
        var qdev = b["qdev"]?.GetValue<string>() ?? "";
        var device = b["device"]?.GetValue<string>() ?? "";
        var root = b["inserted"]?["node-name"]?.GetValue<string>();
        return qdev == deviceId || qdev.Contains($"/{deviceId}/", StringComparison.Ordinal) || qdev.EndsWith($"/{deviceId}", StringComparison.Ordinal)
            || (device.Length > 0 && device == disk) || root == disk;
    }

    private static string? FindFormatNode(List<JsonObject> nodes, string file, string format) =>
        nodes.Where(n => BlockFilenames.Plain(n["file"]?.GetValue<string>()) == file && n["drv"]?.GetValue<string>() == format)
             .Select(n => n["node-name"]?.GetValue<string>())
             .FirstOrDefault();
}
