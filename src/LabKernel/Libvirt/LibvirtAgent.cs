using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using LabKernel.Host;

namespace LabKernel.Libvirt;

/// <summary>
/// The guest agent of a libvirt domain, through <c>virDomainQemuAgentCommand</c> (libvirt-qemu): libvirt owns the
/// agent socket, the lab passes JSON commands through. Also an <see cref="IGuestShell"/> over
/// <c>guest-exec</c>/<c>guest-exec-status</c>, so workloads run the same way as on the QEMU backend.
/// </summary>
public sealed class LibvirtAgent : IGuestAgent
{
    private readonly LibvirtDomain _domain;

    internal LibvirtAgent(LibvirtDomain domain) => _domain = domain;

    /// <summary>Per-command time limit handed to libvirt (whole seconds).</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Passes a raw agent command (JSON text) through <c>virDomainQemuAgentCommand</c> and returns libvirt's reply
    /// text (the agent's whole reply object). Agent errors come back as <see cref="LibvirtException"/>.
    /// </summary>
    public Task<string> CommandAsync(string json, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var seconds = (int)Math.Max(1, Math.Ceiling((timeout ?? CommandTimeout).TotalSeconds));
        return _domain.Run(() => LibvirtRuntime.CallString("virDomainQemuAgentCommand", _domain.What,
            $"virDomainQemuAgentCommand({_domain.Name}, {Abbreviate(json)}, {seconds})",
            () => LibvirtNative.virDomainQemuAgentCommand(_domain.Handle, json, seconds, 0)), cancellationToken);
    }

    /// <summary>Runs an agent command and returns its <c>return</c> member.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var msg = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            msg["arguments"] = arguments;
        }
        string reply;
        try
        {
            reply = await CommandAsync(msg.ToJsonString(), timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (LibvirtException e) when (e.LibvirtMessage.Contains("unable to execute QEMU agent command", StringComparison.Ordinal))
        {
            // The agent ran the command and answered with an error: the same exception as on the QEMU backend.
            // libvirt wraps the agent's description: "... unable to execute QEMU agent command 'x': <description>".
            var message = e.LibvirtMessage;
            var cut = message.IndexOf("': ", message.IndexOf("unable to execute QEMU agent command", StringComparison.Ordinal), StringComparison.Ordinal);
            throw new GuestAgentErrorException(command, "libvirt", cut < 0 ? message : message[(cut + 3)..]);
        }
        return JsonNode.Parse(reply)?["return"];
    }

    /// <summary><c>guest-ping</c>.</summary>
    public Task PingAsync(CancellationToken cancellationToken = default) => ExecuteAsync("guest-ping", timeout: TimeSpan.FromSeconds(2), cancellationToken: cancellationToken);

    /// <summary>
    /// Retries <c>guest-ping</c> until it answers or <paramref name="timeout"/> passes; stops early with a clear
    /// error when the domain is not running. Returns how long it waited.
    /// </summary>
    public async Task<TimeSpan> WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var time = _domain.Connection.Time;
        var started = time.GetTimestamp();
        var last = "no attempt";
        try
        {
            await Poll.UntilAsync(async ct =>
            {
                var state = await _domain.GetStateAsync(ct).ConfigureAwait(false);
                if (state is DomainState.ShutOff or DomainState.Crashed)
                {
                    throw new GuestNotRunningException($"domain '{_domain.Name}' is {state} while waiting for its guest agent (last: {last})");
                }
                try
                {
                    await PingAsync(ct).ConfigureAwait(false);
                    return (true, "");
                }
                catch (LibvirtException e)
                {
                    last = e.LibvirtMessage;
                }
                catch (GuestAgentErrorException e)
                {
                    last = e.Description;
                }
                return (false, last);
            }, $"the guest agent of domain '{_domain.Name}'", timeout, Backoff.Default, time, cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException e) when (!cancellationToken.IsCancellationRequested)
        {
            // What the lab can still see of the guest says which side failed: libvirt's record of the agent's port
            // (the guest opened it or not) and the end of the guest's console log, where the domain writes one.
            throw new LabTimeoutException(e.Awaited, e.Limit, $"{last}; {await DescribeAgentSideAsync().ConfigureAwait(false)}");
        }
        return time.GetElapsedTime(started);
    }

    /// <summary>
    /// One line for a failed wait: libvirt's state of the <c>org.qemu.guest_agent.0</c> channel (from the live XML:
    /// <c>connected</c> once the guest's agent opened its port) and the last lines of the domain's serial console file,
    /// if it has one, read on the domain's host. Never throws: a part it cannot read says so.
    /// </summary>
    internal async Task<string> DescribeAgentSideAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string xml;
        try
        {
            xml = await _domain.GetXmlAsync(cancellationToken: limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is LabException or OperationCanceledException)
        {
            return $"libvirt's live XML unreadable ({e.Message})";
        }
        var (channel, console) = DomainXml.AgentChannelAndConsole(xml);
        var text = $"libvirt's agent channel: {channel ?? "none in the live XML"}";
        if (console is null)
        {
            return text + "; no console log file in the domain";
        }
        try
        {
            var host = await _domain.Connection.GetHostAsync(limit.Token).ConfigureAwait(false);
            var tail = await host.RunAsync("tail", ["-n", "5", console], new Processes.ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(15) }, limit.Token).ConfigureAwait(false);
            var lines = tail.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return text + $"; console log {console}: " + (lines.Length == 0 ? "(empty)" : string.Join(" | ", lines));
        }
        catch (Exception e) when (e is LabException or OperationCanceledException or IOException)
        {
            return text + $"; console log {console} unreadable ({e.Message})";
        }
    }

    /// <inheritdoc />
    public Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
        GuestExec.RunAsync(this, argv, options, cancellationToken);

    /// <summary>Starts a program with <c>guest-exec</c> (output captured) and returns at once.</summary>
    public Task<GuestProcess> StartAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
        GuestExec.StartAsync(this, argv, options, cancellationToken);

    private static string Abbreviate(string s) => s.Length <= 300 ? s : string.Concat(s.AsSpan(0, 300), "…");
}

/// <summary>
/// The domain's QEMU monitor through <c>virDomainQemuMonitorCommand</c> (libvirt-qemu): HMP text commands
/// (<c>info block-jobs</c>, <c>drive_mirror</c>) or QMP JSON. libvirt marks a domain so touched as tainted.
/// </summary>
public sealed class LibvirtMonitor
{
    private readonly LibvirtDomain _domain;

    internal LibvirtMonitor(LibvirtDomain domain) => _domain = domain;

    /// <summary>An HMP command (<c>VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP</c>); returns QEMU's text reply.</summary>
    public Task<string> HmpAsync(string command, CancellationToken cancellationToken = default) =>
        _domain.Run(() =>
        {
            nint result = 0;
            LibvirtRuntime.Call("virDomainQemuMonitorCommand", _domain.What, $"virDomainQemuMonitorCommand({_domain.Name}, \"{command}\", HMP)",
                () => LibvirtNative.virDomainQemuMonitorCommand(_domain.Handle, command, out result, Vir.MonitorHmp));
            return LibvirtNative.TakeString(result) ?? "";
        }, cancellationToken);

    /// <summary>A QMP command as JSON text; returns libvirt's reply text (errors included). Unjournaled for <see cref="LibvirtQmp"/>, whose client journals.</summary>
    internal Task<string> QmpCommandTextAsync(string json, CancellationToken cancellationToken, bool journal = true) =>
        _domain.Run(() =>
        {
            nint result = 0;
            if (journal)
            {
                LibvirtRuntime.Call("virDomainQemuMonitorCommand", _domain.What, $"virDomainQemuMonitorCommand({_domain.Name}, {json}, 0)",
                    () => LibvirtNative.virDomainQemuMonitorCommand(_domain.Handle, json, out result, 0));
            }
            else
            {
                LibvirtNative.virResetLastError();
                if (LibvirtNative.virDomainQemuMonitorCommand(_domain.Handle, json, out result, 0) < 0)
                {
                    var (code, dom, msg) = LibvirtException.ReadLastError();
                    throw new LibvirtException("virDomainQemuMonitorCommand", _domain.What, code, dom, msg);
                }
            }
            return LibvirtNative.TakeString(result) ?? "";
        }, cancellationToken);

    /// <summary>A QMP command as JSON text (flags 0); returns the whole reply object.</summary>
    public Task<JsonNode?> QmpAsync(string json, CancellationToken cancellationToken = default) =>
        _domain.Run(() =>
        {
            nint result = 0;
            LibvirtRuntime.Call("virDomainQemuMonitorCommand", _domain.What, $"virDomainQemuMonitorCommand({_domain.Name}, {json}, 0)",
                () => LibvirtNative.virDomainQemuMonitorCommand(_domain.Handle, json, out result, 0));
            return JsonNode.Parse(LibvirtNative.TakeString(result) ?? "null");
        }, cancellationToken);
}
