using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.GuestAgent;

/// <summary>
/// A qemu-guest-agent, however it is reached: the lab's own socket client, or libvirt's
/// <c>virDomainQemuAgentCommand</c>. Commands are agent JSON; the reply is the <c>return</c> member.
/// </summary>
public interface IGuestAgent : IGuestShell
{
    Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Says the guest's memory was rewound (a snapshot with memory was loaded): the agent in the guest may send a
    /// reply it was about to send at the snapshot instant, so the channel is resynchronised before the next command.
    /// Reaches whoever talks to the agent directly; libvirt resynchronises before every command on its own.
    /// </summary>
    void GuestRewound() { }
}

/// <summary>The <c>guest-exec</c> / <c>guest-exec-status</c> protocol, shared by every <see cref="IGuestAgent"/>.</summary>
public static class GuestExec
{
    /// <summary>Starts a program with <c>guest-exec</c> (argv array, output captured) and returns at once.</summary>
    public static async Task<GuestProcess> StartAsync(IGuestAgent agent, IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (argv.Count == 0)
        {
            throw new ArgumentException("empty command", nameof(argv));
        }
        options ??= new GuestExecOptions();
        var args = new GuestExecArguments(argv[0], argv.Skip(1).ToArray())
        {
            CaptureOutput = true,
            InputData = options.Input is { } input ? Convert.ToBase64String(input) : null,
            Env = options.Environment?.ToArray(),
        };
        var started = await agent.ExecuteAsync("guest-exec", QmpJson.Args(args), cancellationToken: cancellationToken).ConfigureAwait(false);
        if ((started as JsonObject)?["pid"] is not JsonValue)
        {
            throw new LabException($"the guest agent answered guest-exec of `{argv[0]}` without a pid: {started?.ToJsonString() ?? "null"} (a reply out of step with its request)");
        }
        return new GuestProcess(agent, AgentReply.OptionalLong(started, "pid", "guest-exec")!.Value, argv.ToArray());
    }

    /// <summary>Runs a program and waits for it (the <see cref="IGuestShell.ExecAsync"/> of every agent).</summary>
    public static async Task<GuestExecResult> RunAsync(IGuestAgent agent, IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new GuestExecOptions();
        var process = await StartAsync(agent, argv, options, cancellationToken).ConfigureAwait(false);
        var result = await process.WaitAsync(options.Timeout, cancellationToken).ConfigureAwait(false);
        return options.Check ? result.EnsureSuccess() : result;
    }

    /// <summary><c>guest-exec-status</c>: the result once the process has exited, null while it runs.</summary>
    internal static async Task<GuestExecResult?> TryGetExitAsync(IGuestAgent agent, GuestProcess process, CancellationToken cancellationToken)
    {
        const string Command = "guest-exec-status";
        var status = AgentReply.Object(await agent.ExecuteAsync(Command, QmpJson.Args(new GuestExecStatusArguments(process.Pid)), cancellationToken: cancellationToken).ConfigureAwait(false), Command);
        if (AgentReply.OptionalBool(status, "exited", Command) != true)
        {
            return null;
        }
        var signal = AgentReply.OptionalInt(status, "signal", Command);
        return new GuestExecResult(
            process.Command,
            AgentReply.OptionalInt(status, "exitcode", Command) ?? (signal is null ? 0 : 128 + signal.Value),
            Decode(status["out-data"], "guest-exec-status out-data"),
            Decode(status["err-data"], "guest-exec-status err-data"),
            process.Elapsed,
            signal,
            AgentReply.OptionalBool(status, "out-truncated", Command) == true || AgentReply.OptionalBool(status, "err-truncated", Command) == true);
    }

    /// <summary>Kills a guest process (best effort: the caller is already reporting a timeout).</summary>
    internal static async Task TryKillAsync(IGuestAgent agent, long pid, CancellationToken cancellationToken)
    {
        try
        {
            await agent.ExecuteAsync("guest-exec", QmpJson.Args(new GuestExecArguments("/bin/kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)])), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabException)
        {
        }
    }

    /// <summary>Decodes the agent's base64 data; anything that is not base64 is a one-line <see cref="LabException"/>.</summary>
    internal static byte[] Decode(JsonNode? node, string what = "data")
    {
        if (node is not JsonValue v || !v.TryGetValue<string>(out var s))
        {
            return [];
        }
        try
        {
            return Convert.FromBase64String(s);
        }
        catch (FormatException)
        {
            throw new LabException($"the guest agent sent {what} that is not base64 ({s.Length} characters starting '{(s.Length > 20 ? s[..20] + "…" : s)}')");
        }
    }
}
