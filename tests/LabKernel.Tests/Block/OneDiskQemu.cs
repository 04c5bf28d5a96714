using System.Text.Json.Nodes;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// A scripted QEMU with one disk, disk0: <c>/i/top.qcow2</c> (node <c>disk0</c>) over <c>/i/base.qcow2</c> (node
/// <c>#block123</c>), found through <c>query-block</c> (QOM has no virtio-blk device). Other commands are answered
/// by the test's handler, or with an empty return.
/// </summary>
internal static class OneDiskQemu
{
    private const string QueryBlock = """[{"device":"","qdev":"/machine/peripheral/disk0-dev/virtio-backend","inserted":{"node-name":"disk0","image":{"filename":"/i/top.qcow2","format":"qcow2","backing-filename":"base.qcow2","backing-image":{"filename":"/i/base.qcow2","format":"qcow2"}}}}]""";

    private const string NamedNodes = """[{"node-name":"disk0","drv":"qcow2","file":"/i/top.qcow2"},{"node-name":"#block123","drv":"qcow2","file":"/i/base.qcow2"},{"node-name":"#block099","drv":"file","file":"/i/base.qcow2"}]""";

    public static Task<ScriptedQmpPeer> StartAsync(Func<string, JsonObject, JsonNode?>? answer = null) =>
        ScriptedQmpPeer.StartAsync((_, cmd, args) => Task.FromResult(answer?.Invoke(cmd, args) ?? cmd switch
        {
            "query-block" => JsonNode.Parse(QueryBlock),
            "query-named-block-nodes" => JsonNode.Parse(NamedNodes),
            "query-jobs" => new JsonArray(),
            "qom-get" => ScriptedQmpPeer.Error("DeviceNotFound", "Device '/machine/peripheral/disk0-dev/virtio-backend' not found"),
            _ => new JsonObject(),
        }));
}
