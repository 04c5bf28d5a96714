using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;

namespace LabKernel.Libvirt;

/// <summary>
/// The guest agent of a libvirt domain, through <c>virDomainQemuAgentCommand</c> (libvirt-qemu): libvirt owns the
/// agent socket, the lab passes JSON commands through. Also an <see cref="IGuestShell"/> over
/// <c>guest-exec</c>/<c>guest-exec-status</c>, so workloads run the same way as on the QEMU backend.
/// </summary>
public sealed class LibvirtAgent : IGuestShell
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
        var reply = await CommandAsync(msg.ToJsonString(), timeout, cancellationToken).ConfigureAwait(false);
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
        var sw = Stopwatch.StartNew();
        string last = "no attempt";
        while (sw.Elapsed < timeout)
        {
            var state = await _domain.GetStateAsync(cancellationToken).ConfigureAwait(false);
            if (state is DomainState.ShutOff or DomainState.Crashed)
            {
                throw new LabException($"domain '{_domain.Name}' is {state} while waiting for its guest agent (last: {last})");
            }
            try
            {
                await PingAsync(cancellationToken).ConfigureAwait(false);
                return sw.Elapsed;
            }
            catch (LibvirtException e)
            {
                last = e.LibvirtMessage;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
        }
        throw new LabTimeoutException($"the guest agent of domain '{_domain.Name}'", timeout, last);
    }

    /// <inheritdoc />
    public async Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new GuestExecOptions();
        var p = await StartAsync(argv, options, cancellationToken).ConfigureAwait(false);
        var r = await p.WaitAsync(options.Timeout, cancellationToken).ConfigureAwait(false);
        return options.Check ? r.EnsureSuccess() : r;
    }

    /// <summary>Starts a program with <c>guest-exec</c> (output captured) and returns at once.</summary>
    public async Task<LibvirtGuestProcess> StartAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (argv.Count == 0)
        {
            throw new ArgumentException("empty command", nameof(argv));
        }
        options ??= new GuestExecOptions();
        var args = new JsonObject
        {
            ["path"] = argv[0],
            ["arg"] = new JsonArray(argv.Skip(1).Select(a => (JsonNode)a).ToArray()),
            ["capture-output"] = true,
        };
        if (options.Input is { } input)
        {
            args["input-data"] = Convert.ToBase64String(input);
        }
        if (options.Environment is { } env)
        {
            args["env"] = new JsonArray(env.Select(e => (JsonNode)e).ToArray());
        }
        var r = await ExecuteAsync("guest-exec", args, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new LibvirtGuestProcess(this, r!["pid"]!.GetValue<long>(), argv.ToArray());
    }

    internal async Task<GuestExecResult?> TryGetExitAsync(LibvirtGuestProcess p, CancellationToken cancellationToken)
    {
        var s = (await ExecuteAsync("guest-exec-status", new JsonObject { ["pid"] = p.Pid }, cancellationToken: cancellationToken).ConfigureAwait(false))!.AsObject();
        if (s["exited"]?.GetValue<bool>() != true)
        {
            return null;
        }
        var signal = s["signal"]?.GetValue<int>();
        return new GuestExecResult(p.Command, s["exitcode"]?.GetValue<int>() ?? (signal is null ? 0 : 128 + signal.Value),
            Decode(s["out-data"]), Decode(s["err-data"]), p.Elapsed, signal,
            s["out-truncated"]?.GetValue<bool>() == true || s["err-truncated"]?.GetValue<bool>() == true);
    }

    private static byte[] Decode(JsonNode? n) => n is null ? [] : Convert.FromBase64String(n.GetValue<string>());

    private static string Abbreviate(string s) => s.Length <= 300 ? s : string.Concat(s.AsSpan(0, 300), "…");
}

/// <summary>A guest process started with <c>guest-exec</c> through libvirt.</summary>
public sealed class LibvirtGuestProcess
{
    private readonly LibvirtAgent _agent;
    private readonly Stopwatch _sw = Stopwatch.StartNew();

    internal LibvirtGuestProcess(LibvirtAgent agent, long pid, IReadOnlyList<string> command)
    {
        _agent = agent;
        Pid = pid;
        Command = command;
    }

    public long Pid { get; }
    public IReadOnlyList<string> Command { get; }
    public TimeSpan Elapsed => _sw.Elapsed;

    /// <summary>Polls <c>guest-exec-status</c> (backing off to 1 s) until the process exits or <paramref name="timeout"/> passes.</summary>
    public async Task<GuestExecResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        var limit = Stopwatch.StartNew();
        while (true)
        {
            if (await _agent.TryGetExitAsync(this, cancellationToken).ConfigureAwait(false) is { } r)
            {
                return r;
            }
            if (limit.Elapsed > timeout)
            {
                throw new LabTimeoutException($"guest command {string.Join(' ', Command)} (pid {Pid.ToString(CultureInfo.InvariantCulture)})", timeout);
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
        }
    }
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
