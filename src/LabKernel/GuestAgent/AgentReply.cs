using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabKernel.GuestAgent;

/// <summary>
/// Reads the members of an agent reply as the types the protocol gives them. A member of another type (a reply out
/// of step with its request, a guest that sends garbage) is a one-line <see cref="LabException"/> naming the command
/// and the member, never an <see cref="InvalidOperationException"/> from System.Text.Json or a null dereference.
/// </summary>
internal static class AgentReply
{
    /// <summary>The reply as an object (guest-exec-status, guest-info, guest-file-read...).</summary>
    public static JsonObject Object(JsonNode? reply, string command) =>
        reply as JsonObject ?? throw Unexpected(command, "return", "an object", reply);

    /// <summary>The reply itself as a number (guest-file-open's handle, guest-fsfreeze-freeze's count).</summary>
    public static long Long(JsonNode? reply, string command) =>
        TryNumber<long>(reply, out var v) ? v : throw Unexpected(command, "return", "an integer", reply);

    /// <summary>The reply itself as a string (guest-fsfreeze-status).</summary>
    public static string String(JsonNode? reply, string command) =>
        reply is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Unexpected(command, "return", "a string", reply);

    /// <summary>An optional integer member: null when absent or JSON null.</summary>
    public static long? OptionalLong(JsonNode? reply, string member, string command)
    {
        var node = Member(reply, member);
        return node is null ? null : TryNumber<long>(node, out var v) ? v : throw Unexpected(command, member, "an integer", node);
    }

    /// <summary>An optional 32-bit integer member (exit codes, signals, counts).</summary>
    public static int? OptionalInt(JsonNode? reply, string member, string command)
    {
        var node = Member(reply, member);
        return node is null ? null : TryNumber<int>(node, out var v) ? v : throw Unexpected(command, member, "a 32-bit integer", node);
    }

    /// <summary>An optional boolean member.</summary>
    public static bool? OptionalBool(JsonNode? reply, string member, string command)
    {
        var node = Member(reply, member);
        return node switch
        {
            null => null,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw Unexpected(command, member, "a boolean", node),
        };
    }

    /// <summary>An optional string member.</summary>
    public static string? OptionalString(JsonNode? reply, string member, string command)
    {
        var node = Member(reply, member);
        return node switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            _ => throw Unexpected(command, member, "a string", node),
        };
    }

    /// <summary>An optional list member (empty when absent).</summary>
    public static JsonArray OptionalArray(JsonNode? reply, string member, string command) => Member(reply, member) switch
    {
        null => [],
        JsonArray a => a,
        var other => throw Unexpected(command, member, "a list", other),
    };

    private static JsonNode? Member(JsonNode? reply, string member) => reply is JsonObject o ? o[member] : null;

    private static bool TryNumber<T>(JsonNode? node, out T value)
    {
        value = default!;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value!);
    }

    private static LabException Unexpected(string command, string member, string expected, JsonNode? got)
    {
        var text = got?.ToJsonString() ?? "null";
        if (text.Length > 80)
        {
            text = text[..80] + "…";
        }
        return new LabException($"the guest agent answered {command} with {member} that is not {expected}: {text} (a reply out of step with its request?)");
    }
}
