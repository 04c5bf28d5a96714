using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// Reads a disk's chain from QEMU: the root node from QOM, the layers from <c>query-named-block-nodes</c>, or
/// <c>query-block</c> for a device that is not a virtio-blk disk. Every chain read is remembered in the
/// connection's <see cref="ChainViews"/>.
/// </summary>
internal sealed class ChainQueries(BlockLayer block)
{
    private QmpClient Qmp => block.Qmp;

    /// <summary>See <see cref="BlockLayer.QueryChainAsync"/>.</summary>
    public async Task<LiveChain> QueryChainAsync(string disk, CancellationToken cancellationToken)
    {
        var chain = await QueryLiveAsync(disk, cancellationToken).ConfigureAwait(false);
        block.Views.Remember(chain);
        return chain;
    }

    private async Task<LiveChain> QueryLiveAsync(string disk, CancellationToken cancellationToken)
    {
        var root = await TryRootNodeAsync(disk, cancellationToken).ConfigureAwait(false);
        if (root is not null)
        {
            var fast = await ChainFromRootAsync(disk, root, cancellationToken).ConfigureAwait(false);
            if (fast is not null)
            {
                return fast;
            }
        }
        var blocks = await QueryBlockAsync(cancellationToken).ConfigureAwait(false);
        var nodes = await QueryNamedNodesAsync(cancellationToken).ConfigureAwait(false);
        var chain = LiveChain.FromQmp(disk, block.DeviceIdOf(disk), blocks, nodes)
            ?? throw new UnknownBlockNodeException(disk, "in query-block (no such disk, or no medium)");
        // Layers below the active one have auto node names; resolve them by file.
        var byName = nodes.Where(n => n["node-name"] is not null).ToDictionary(n => n["node-name"]!.GetValue<string>(), n => n);
        var layers = chain.Layers.ToList();
        for (var i = 1; i < layers.Count; i++)
        {
            var resolved = ResolveBacking(byName, layers[i]);
            if (resolved is not null)
            {
                layers[i] = layers[i] with { NodeName = resolved };
            }
        }
        return chain with { Layers = layers };
    }

    /// <summary>The root node of a virtio-blk disk from its <c>drive</c> property, or null when QOM has no such device.</summary>
    public async Task<string?> TryRootNodeAsync(string disk, CancellationToken cancellationToken)
    {
        try
        {
            var v = await Qmp.ExecuteAsync("qom-get", QmpJson.Args(new QomGetArguments(DevicePath(disk), "drive")), cancellationToken: cancellationToken).ConfigureAwait(false);
            var name = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : null;
            return string.IsNullOrEmpty(name) ? null : name;
        }
        catch (QmpErrorException)
        {
            return null;
        }
    }

    /// <summary>Walks the chain down from <paramref name="root"/> in one flat <c>query-named-block-nodes</c>.</summary>
    public async Task<LiveChain?> ChainFromRootAsync(string disk, string root, CancellationToken cancellationToken)
    {
        var nodes = await QueryNamedNodesAsync(cancellationToken).ConfigureAwait(false);
        var current = nodes.FirstOrDefault(n => n["node-name"]?.GetValue<string>() == root);
        var layers = new List<LiveLayer>();
        var used = new HashSet<string>();
        while (current is not null && layers.Count < 1000)
        {
            var name = current["node-name"]!.GetValue<string>();
            used.Add(name);
            var image = current["image"] as JsonObject;
            var file = BlockFilenames.Plain(image?["filename"]?.GetValue<string>() ?? current["file"]?.GetValue<string>()) ?? "";
            var format = image?["format"]?.GetValue<string>() ?? current["drv"]?.GetValue<string>() ?? "";
            layers.Add(new LiveLayer(name, file, format, image?["backing-filename"]?.GetValue<string>()));
            var next = BlockFilenames.Plain(image?["full-backing-filename"]?.GetValue<string>() ?? current["backing_file"]?.GetValue<string>());
            if (string.IsNullOrEmpty(next))
            {
                break;
            }
            current = nodes.FirstOrDefault(n => BlockFilenames.Plain(n["file"]?.GetValue<string>()) == next && n["drv"]?.GetValue<string>() is { } d && d != "file"
                && !used.Contains(n["node-name"]!.GetValue<string>()));
            if (current is null)
            {
                return null;
            }
        }
        return layers.Count == 0 ? null : new LiveChain(disk, DevicePath(disk), layers);
    }

    /// <summary>Every node QEMU has open: one flat <c>query-named-block-nodes</c>.</summary>
    public async Task<IReadOnlyList<JsonObject>> QueryNamedNodesAsync(CancellationToken cancellationToken) =>
        (await Qmp.ExecuteAsync("query-named-block-nodes", QmpJson.Args(new NamedBlockNodesArguments(Flat: true)), cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [])
            .OfType<JsonObject>().ToList();

    /// <summary>Every block device: <c>query-block</c>.</summary>
    public async Task<JsonArray> QueryBlockAsync(CancellationToken cancellationToken) =>
        await Qmp.ExecuteAsync("query-block", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];

    private string DevicePath(string disk) => $"/machine/peripheral/{block.DeviceIdOf(disk)}/virtio-backend";

    private static string? ResolveBacking(Dictionary<string, JsonObject> byName, LiveLayer lower)
    {
        var candidates = byName.Values.Where(n => BlockFilenames.Plain(n["file"]?.GetValue<string>()) == lower.Filename && n["drv"]?.GetValue<string>() == lower.Format)
            .Select(n => n["node-name"]!.GetValue<string>()).ToList();
        return candidates.Count == 0 ? null : candidates.Contains(lower.NodeName) ? lower.NodeName : candidates[0];
    }

    /// <summary><c>qom-get</c>'s arguments.</summary>
    private sealed record QomGetArguments(string Path, string Property);

    /// <summary><c>query-named-block-nodes</c>'s arguments.</summary>
    private sealed record NamedBlockNodesArguments(bool Flat);
}
