using System.Text.Json.Nodes;

namespace LabKernel.Qmp;

/// <summary>An asynchronous QMP event (<c>BLOCK_JOB_READY</c>, <c>JOB_STATUS_CHANGE</c>, <c>SHUTDOWN</c>, ...).</summary>
/// <param name="Name">The event name.</param>
/// <param name="Data">The event's <c>data</c> member (an empty object when absent).</param>
/// <param name="Timestamp">QEMU's timestamp of the event.</param>
public sealed record QmpEvent(string Name, JsonObject Data, DateTimeOffset Timestamp)
{
    /// <summary>A string member of <see cref="Data"/>, or null.</summary>
    public string? GetString(string member) => Data[member] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public override string ToString() => $"{Name} {Data.ToJsonString()}";

    internal static QmpEvent FromMessage(JsonObject message)
    {
        var name = message["event"]!.GetValue<string>();
        var data = message["data"] as JsonObject ?? new JsonObject();
        var ts = DateTimeOffset.UnixEpoch;
        if (message["timestamp"] is JsonObject t)
        {
            var sec = t["seconds"]?.GetValue<long>() ?? 0;
            var usec = t["microseconds"]?.GetValue<long>() ?? 0;
            ts = DateTimeOffset.FromUnixTimeSeconds(sec).AddTicks(usec * 10);
        }
        // Detach from the parent message so the event owns its data.
        message.Remove("data");
        return new QmpEvent(name, data, ts);
    }
}
