using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.GuestAgent;

/// <summary>
/// The agent commands the lab uses beyond <c>guest-exec</c>: files (<c>guest-file-*</c>), filesystem freeze
/// (<c>guest-fsfreeze-*</c>) and <c>guest-info</c>. Written once over <see cref="IGuestAgent.ExecuteAsync"/>, so they
/// work the same on QEMU's agent socket (<see cref="GuestAgentClient"/>) and through libvirt
/// (<see cref="Libvirt.LibvirtAgent"/>).
/// </summary>
public static class GuestAgentCommands
{
    /// <summary>Chunk for guest-file-read/-write: well under the agent's (and libvirt's) message limits.</summary>
    internal const int FileChunk = 1 << 20;

    /// <summary><c>guest-info</c>: the agent's version and enabled commands.</summary>
    public static async Task<GuestAgentInfo> InfoAsync(this IGuestAgent agent, CancellationToken cancellationToken = default)
    {
        var r = AgentReply.Object(await agent.ExecuteAsync("guest-info", cancellationToken: cancellationToken).ConfigureAwait(false), "guest-info");
        var cmds = AgentReply.OptionalArray(r, "supported_commands", "guest-info")
            .Where(c => AgentReply.OptionalBool(c, "enabled", "guest-info") == true)
            .Select(c => AgentReply.OptionalString(c, "name", "guest-info") ?? "").Where(n => n.Length > 0).ToArray();
        return new GuestAgentInfo(AgentReply.OptionalString(r, "version", "guest-info") ?? "", cmds);
    }

    /// <summary>Writes a whole file in the guest with <c>guest-file-open/-write/-close</c>, in chunks.</summary>
    public static async Task WriteFileAsync(this IGuestAgent agent, string guestPath, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var handle = await OpenAsync(agent, guestPath, "w", cancellationToken).ConfigureAwait(false);
        try
        {
            for (var offset = 0; offset < content.Length; offset += FileChunk)
            {
                var chunk = content.Slice(offset, Math.Min(FileChunk, content.Length - offset));
                var r = await agent.ExecuteAsync("guest-file-write", QmpJson.Args(new GuestFileWriteArguments(handle, Convert.ToBase64String(chunk.Span))), cancellationToken: cancellationToken).ConfigureAwait(false);
                var written = AgentReply.OptionalInt(r, "count", "guest-file-write") ?? 0;
                if (written != chunk.Length)
                {
                    throw new LabException($"guest-file-write to {guestPath} wrote {written} of {chunk.Length} bytes");
                }
            }
            await agent.ExecuteAsync("guest-file-flush", QmpJson.Args(new GuestFileHandleArguments(handle)), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await CloseAsync(agent, handle, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads a whole file from the guest with <c>guest-file-open/-read/-close</c>, in chunks.</summary>
    public static Task<byte[]> ReadFileAsync(this IGuestAgent agent, string guestPath, CancellationToken cancellationToken = default) =>
        ReadFileAsync(agent, guestPath, null, cancellationToken);

    /// <summary>
    /// As <see cref="ReadFileAsync(IGuestAgent, string, CancellationToken)"/>, each of the agent commands limited to
    /// <paramref name="commandTimeout"/> (the agent's own default when null): a read of a guest that may be going down
    /// ends at that limit, not at the agent's.
    /// </summary>
    public static async Task<byte[]> ReadFileAsync(this IGuestAgent agent, string guestPath, TimeSpan? commandTimeout, CancellationToken cancellationToken = default)
    {
        var handle = await OpenAsync(agent, guestPath, "r", cancellationToken, commandTimeout).ConfigureAwait(false);
        try
        {
            using var ms = new MemoryStream();
            while (true)
            {
                var r = AgentReply.Object(await agent.ExecuteAsync("guest-file-read", QmpJson.Args(new GuestFileReadArguments(handle, FileChunk)), commandTimeout, cancellationToken).ConfigureAwait(false), "guest-file-read");
                ms.Write(GuestExec.Decode(r["buf-b64"], $"guest-file-read data of {guestPath}"));
                if (AgentReply.OptionalBool(r, "eof", "guest-file-read") == true || AgentReply.OptionalInt(r, "count", "guest-file-read") == 0)
                {
                    return ms.ToArray();
                }
            }
        }
        finally
        {
            await CloseAsync(agent, handle, cancellationToken, commandTimeout).ConfigureAwait(false);
        }
    }

    /// <summary>Copies a host file into the guest.</summary>
    public static async Task PushFileAsync(this IGuestAgent agent, string hostPath, string guestPath, CancellationToken cancellationToken = default) =>
        await agent.WriteFileAsync(guestPath, await File.ReadAllBytesAsync(hostPath, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

    /// <summary>Copies a guest file to the host.</summary>
    public static async Task PullFileAsync(this IGuestAgent agent, string guestPath, string hostPath, CancellationToken cancellationToken = default) =>
        await File.WriteAllBytesAsync(hostPath, await agent.ReadFileAsync(guestPath, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

    /// <summary>SHA-256 of a guest file computed in the guest (<c>sha256sum</c>), lower-case hex.</summary>
    public static async Task<string> Sha256Async(this IGuestAgent agent, string guestPath, CancellationToken cancellationToken = default)
    {
        var r = await agent.ExecAsync(["sha256sum", guestPath], new GuestExecOptions { Check = true }, cancellationToken).ConfigureAwait(false);
        return r.StandardOutput.Split(' ')[0].Trim();
    }

    /// <summary><c>guest-fsfreeze-freeze</c>: returns how many filesystems were frozen.</summary>
    public static async Task<int> FreezeAsync(this IGuestAgent agent, CancellationToken cancellationToken = default) =>
        (int)AgentReply.Long(await agent.ExecuteAsync("guest-fsfreeze-freeze", cancellationToken: cancellationToken).ConfigureAwait(false), "guest-fsfreeze-freeze");

    /// <summary><c>guest-fsfreeze-thaw</c>: returns how many filesystems were thawed.</summary>
    public static async Task<int> ThawAsync(this IGuestAgent agent, CancellationToken cancellationToken = default) =>
        (int)AgentReply.Long(await agent.ExecuteAsync("guest-fsfreeze-thaw", cancellationToken: cancellationToken).ConfigureAwait(false), "guest-fsfreeze-thaw");

    /// <summary><c>guest-fsfreeze-status</c>.</summary>
    public static async Task<FsFreezeStatus> FreezeStatusAsync(this IGuestAgent agent, CancellationToken cancellationToken = default)
    {
        var s = AgentReply.String(await agent.ExecuteAsync("guest-fsfreeze-status", cancellationToken: cancellationToken).ConfigureAwait(false), "guest-fsfreeze-status");
        return s == "frozen" ? FsFreezeStatus.Frozen : FsFreezeStatus.Thawed;
    }

    /// <summary>
    /// Runs <paramref name="action"/> with the guest's filesystems frozen (<c>guest-fsfreeze-freeze</c>) and thaws
    /// them afterwards, also when it fails, so a failed snapshot never leaves the guest frozen.
    /// </summary>
    public static async Task<T> WhileFrozenAsync<T>(this IGuestAgent agent, Func<Task<T>> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        await agent.FreezeAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            await agent.ThawAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<long> OpenAsync(IGuestAgent agent, string path, string mode, CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        AgentReply.Long(await agent.ExecuteAsync("guest-file-open", QmpJson.Args(new GuestFileOpenArguments(path, mode)), timeout, cancellationToken).ConfigureAwait(false), "guest-file-open");

    private static async Task CloseAsync(IGuestAgent agent, long handle, CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        await agent.ExecuteAsync("guest-file-close", QmpJson.Args(new GuestFileHandleArguments(handle)), timeout, cancellationToken).ConfigureAwait(false);
}
