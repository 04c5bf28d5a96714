using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// Nodes the monitor owns: <c>blockdev-add</c> of an image (optionally through <c>blkdebug</c>), <c>blockdev-del</c>,
/// and closing the nodes a pivot left behind. Deleting nodes forgets the remembered chains they may have been in.
/// </summary>
internal sealed class BlockNodes(BlockLayer block)
{
    private QmpClient Qmp => block.Qmp;

    /// <summary>The virtual size of node <paramref name="nodeName"/> as QEMU has it (<c>query-named-block-nodes</c>, <c>image.virtual-size</c>).</summary>
    public async Task<long> VirtualSizeAsync(string nodeName, CancellationToken cancellationToken)
    {
        var nodes = await Qmp.ExecuteAsync("query-named-block-nodes", QmpJson.Args(new FlatNodes(true)), cancellationToken: cancellationToken).ConfigureAwait(false) as System.Text.Json.Nodes.JsonArray ?? [];
        return nodes.OfType<System.Text.Json.Nodes.JsonObject>().FirstOrDefault(n => n["node-name"]?.GetValue<string>() == nodeName)?["image"]?["virtual-size"]?.GetValue<long>()
            ?? throw new BlockOperationException($"QEMU reports no virtual size for node {nodeName}");
    }

    private sealed record FlatNodes(bool Flat);

    /// <summary>See <see cref="BlockLayer.AddImageNodeAsync"/>.</summary>
    public async Task AddImageNodeAsync(string file, string nodeName, string format, bool withBacking, BlkdebugError? inject, CancellationToken cancellationToken)
    {
        if (!await block.Host.FileExistsAsync(file, cancellationToken).ConfigureAwait(false))
        {
            throw new OverlayMissingException(file, "image");
        }
        object fileNode = new FileNodeOptions(Path.GetFullPath(file));
        if (inject is not null)
        {
            fileNode = new BlkdebugNodeOptions(fileNode, [new BlkdebugInjection(inject.Event, inject.Errno, inject.Once)]);
        }
        var args = QmpJson.Args(new BlockdevAddArguments(format, nodeName, fileNode));
        if (!withBacking && format == "qcow2")
        {
            // An explicit null (not an absent member): open the image without its backing file.
            args["backing"] = null;
        }
        await block.ExecuteTranslatedAsync("blockdev-add", args, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.RemoveNodeAsync"/>.</summary>
    public async Task RemoveNodeAsync(string nodeName, CancellationToken cancellationToken)
    {
        // QEMU refuses a node still in a chain, but a node it closes may have been in one the lab remembers.
        block.Views.Forget(null);
        await block.ExecuteTranslatedAsync("blockdev-del", QmpJson.Args(new BlockdevDelArguments(nodeName)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="BlockLayer.ReleaseNodesLeftBehindAsync"/>.</summary>
    public async Task<IReadOnlyList<string>> ReleaseNodesLeftBehindAsync(LiveChain before, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(before);
        var now = await block.Chains.QueryChainAsync(before.Disk, cancellationToken).ConfigureAwait(false);
        var leftBehind = before.Filenames.Except(now.Filenames, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        var released = new List<string>();
        var progress = leftBehind.Count > 0;
        while (progress)
        {
            progress = false;
            var nodes = (await block.Chains.QueryNamedNodesAsync(cancellationToken).ConfigureAwait(false))
                .Select(n => (Name: n["node-name"]?.GetValue<string>() ?? "", File: BlockFilenames.Plain(n["file"]?.GetValue<string>()) ?? "", Driver: n["drv"]?.GetValue<string>() ?? ""))
                .Where(n => n.Name.Length > 0 && !n.Name.StartsWith('#') && leftBehind.Contains(n.File) && !released.Contains(n.Name))
                .OrderBy(n => n.Driver == "file" ? 1 : 0)
                .ToList();
            foreach (var n in nodes)
            {
                try
                {
                    await Qmp.ExecuteAsync("blockdev-del", QmpJson.Args(new BlockdevDelArguments(n.Name)), cancellationToken: cancellationToken).ConfigureAwait(false);
                    released.Add(n.Name);
                    progress = true;
                }
                catch (QmpErrorException)
                {
                    // Still in use (a parent holds it): a later round may free it.
                }
            }
        }
        if (released.Count > 0)
        {
            block.Views.Forget(before.Disk);
        }
        return released;
    }

    /// <summary><c>blockdev-add</c> of a format node over <paramref name="File"/> (a file or blkdebug node).</summary>
    private sealed record BlockdevAddArguments(string Driver, string NodeName, object File);

    /// <summary>A <c>file</c> protocol node.</summary>
    private sealed record FileNodeOptions(string Filename)
    {
        public string Driver => "file";
    }

    /// <summary>A <c>blkdebug</c> node over <paramref name="Image"/> that injects errors.</summary>
    private sealed record BlkdebugNodeOptions(object Image, IReadOnlyList<BlkdebugInjection> InjectError)
    {
        public string Driver => "blkdebug";
    }

    /// <summary>One <c>inject-error</c> rule.</summary>
    private sealed record BlkdebugInjection(string Event, int Errno, bool Once);

    /// <summary><c>blockdev-del</c>'s arguments.</summary>
    private sealed record BlockdevDelArguments(string NodeName);
}
