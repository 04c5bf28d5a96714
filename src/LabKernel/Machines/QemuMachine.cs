using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Journal;
using LabKernel.Processes;
using LabKernel.Qmp;
using LabKernel.Ssh;

namespace LabKernel.Machines;

/// <summary>
/// A running <c>qemu-system-x86_64</c>: disks as named <c>-blockdev</c> nodes, QMP and guest-agent sockets in a
/// private 0700 folder, the serial console in a log file, SSH on a free loopback port. Disposing it shuts the
/// guest down cleanly (agent shutdown, then QMP <c>quit</c>, then kill as a last resort).
/// </summary>
public sealed class QemuMachine : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly bool _ownsRuntimeFolder;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GuestAgentClient? _agent;
    private BlockLayer? _block;
    private IDisposable? _exitHook;
    private bool _disposed;

    private QemuMachine(MachineOptions options, Process process, string runtimeFolder, bool ownsRuntimeFolder, AcceleratorChoice accel, int? sshPort, IReadOnlyList<string> argv)
    {
        Options = options;
        _process = process;
        RuntimeFolder = runtimeFolder;
        _ownsRuntimeFolder = ownsRuntimeFolder;
        Accelerator = accel;
        SshPort = sshPort;
        CommandLine = argv;
    }

    public MachineOptions Options { get; }

    /// <summary>The argv QEMU was started with.</summary>
    public IReadOnlyList<string> CommandLine { get; }

    public string RuntimeFolder { get; }
    public string QmpSocket => Path.Combine(RuntimeFolder, "qmp.sock");
    public string AgentSocket => Path.Combine(RuntimeFolder, "qga.sock");
    public string ConsoleLog => Path.Combine(RuntimeFolder, "console.log");
    public AcceleratorChoice Accelerator { get; }
    public int? SshPort { get; }
    public int ProcessId => _process.Id;

    /// <summary>From QEMU's start to the agent's first answer (null without an agent).</summary>
    public TimeSpan? BootToAgent { get; private set; }

    /// <summary>
    /// When each step of the start ended, counted from QEMU's start: "monitor", "agent socket", "state loaded" (a
    /// warm start), "agent answered" (with the number of guest-sync attempts). Where a slow start lost its time.
    /// </summary>
    public IReadOnlyList<(string Step, TimeSpan At)> StartSteps => _steps;

    private readonly List<(string Step, TimeSpan At)> _steps = [];

    public QmpClient Qmp { get; private set; } = null!;

    /// <summary>
    /// The block layer over this machine's QMP connection: live chains, snapshots, commit, stream, mirror. One per
    /// machine, the same object on every call, so every caller shares its remembered chains.
    /// </summary>
    public BlockLayer Block() => LazyInitializer.EnsureInitialized(ref _block, () => new BlockLayer(Qmp));

    /// <summary>The guest agent; throws when the machine was started without one.</summary>
    public GuestAgentClient Agent => _agent ?? throw new LabException("this machine has no guest agent channel");

    /// <summary>SSH into the guest (SSH.NET, one reused connection, the image's host key pinned); null when no key or network was configured.</summary>
    public SshGuestShell? Ssh { get; private set; }

    /// <summary>Completes when the QEMU process has exited.</summary>
    public Task Exited => _exited.Task;

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Starts QEMU, connects QMP and (when configured) waits for the guest agent to answer.</summary>
    public static async Task<QemuMachine> StartAsync(MachineOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        foreach (var d in options.Drives)
        {
            if (!File.Exists(d.File))
            {
                throw new LabUsageException($"disk image not found: {d.File}");
            }
        }
        var qemu = ProcessRunner.Which("qemu-system-x86_64") ?? throw new LabException("qemu-system-x86_64 is missing; scripts/setup installs it");
        var accel = options.Accelerator ?? await Machines.Accelerator.ChooseAsync(options.Kernel, cancellationToken).ConfigureAwait(false);
        var owns = options.RuntimeFolder is null;
        var runtime = options.RuntimeFolder ?? LabPaths.CreatePrivateRuntimeFolder("lab-" + options.Name);
        int? sshPort = options.Network ? FreeLoopbackPort() : null;
        var argv = BuildArguments(options, accel, runtime, sshPort);

        var psi = new ProcessStartInfo(qemu)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in argv)
        {
            psi.ArgumentList.Add(a);
        }
        var entry = LabJournal.Current.Begin("process", ShellQuote.Join([qemu, .. argv]));
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var sw = Stopwatch.StartNew();
        process.Start();
        entry.Complete($"pid {process.Id}");
        var machine = Attach(new QemuMachine(options, process, runtime, owns, accel, sshPort, argv));

        try
        {
            machine.Qmp = await ConnectQmpAsync(machine, cancellationToken).ConfigureAwait(false);
            machine._steps.Add(("monitor", sw.Elapsed));
            if (options.GuestAgent)
            {
                machine._agent = await GuestAgentClient.ConnectAsync(machine.AgentSocket, TimeSpan.FromSeconds(10), options.Time, cancellationToken).ConfigureAwait(false);
                machine._steps.Add(("agent socket", sw.Elapsed));
            }
            if (options.IncomingState is { } state)
            {
                await machine.LoadStateAsync(state, options.AgentTimeout, cancellationToken).ConfigureAwait(false);
                machine._steps.Add(("state loaded", sw.Elapsed));
            }
            if (options.GuestAgent)
            {
                if (!options.StartPaused)
                {
                    await machine.WaitForAgentAsync(options.AgentTimeout, sw, cancellationToken).ConfigureAwait(false);
                }
            }
            if (sshPort is { } port && options.SshPrivateKey is { } key && options.SshKnownHosts is { } kh)
            {
                machine.Ssh = new SshGuestShell(new SshTarget("127.0.0.1", port, "root", key, kh));
            }
            return machine;
        }
        catch (LabException e)
        {
            if (await machine.ExitsSoonAsync().ConfigureAwait(false))
            {
                var error = machine.EarlyExitError(options.IncomingState is { } loading ? $"while loading the saved VM state {loading}" : "while starting", e);
                await machine.DisposeAsync().ConfigureAwait(false);
                throw error;
            }
            await machine.KillAsync().ConfigureAwait(false);
            await machine.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        catch
        {
            await machine.KillAsync().ConfigureAwait(false);
            await machine.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// A machine over a process that is not QEMU (started with stdout and stderr redirected) and a QMP connection
    /// already made, for tests of the machine's own waits: nothing boots. Disposing it shuts the process down as it
    /// would QEMU.
    /// </summary>
    internal static QemuMachine AttachForTests(MachineOptions options, Process process, QmpClient qmp, string runtimeFolder)
    {
        options.Validate();
        var machine = Attach(new QemuMachine(options, process, runtimeFolder, ownsRuntimeFolder: false, new AcceleratorChoice("none", "a test"), sshPort: null, argv: []));
        machine.Qmp = qmp;
        return machine;
    }

    /// <summary>Hooks a started process's stderr, exit and this process's own exit to <paramref name="machine"/>.</summary>
    private static QemuMachine Attach(QemuMachine machine)
    {
        var process = machine._process;
        machine._exitHook = Host.ProcessExitHooks.Register($"QEMU {machine.Options.Name}", machine.QuitForProcessExit);
        process.EnableRaisingEvents = true;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (machine._stderr)
                {
                    machine._stderr.AppendLine(e.Data);
                }
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.Exited += (_, _) => machine._exited.TrySetResult();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (process.HasExited)
        {
            machine._exited.TrySetResult();
        }
        return machine;
    }

    private static async Task<QmpClient> ConnectQmpAsync(QemuMachine machine, CancellationToken cancellationToken)
    {
        var socket = await UnixSockets.ConnectAsync(machine.QmpSocket, TimeSpan.FromSeconds(30), "QEMU's QMP socket", cancellationToken, () => machine.HasExited, machine.Options.Time).ConfigureAwait(false);
        return await QmpClient.ConnectAsync(new NetworkStream(socket, ownsSocket: true), machine.Options.Time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>After a start-up failure: did QEMU exit (or is it exiting)? Its exit explains the failure.</summary>
    private Task<bool> ExitsSoonAsync() =>
        ExitsWithinAsync(_process.WaitForExitAsync(), $"QEMU {Options.Name} to exit after a failed start", TimeSpan.FromSeconds(3), Options.Time, CancellationToken.None);

    /// <summary>
    /// Loads a saved VM state into this machine, started with <c>-incoming defer</c>: QMP <c>migrate-incoming</c> of
    /// <c>exec:cat FILE</c>, waits until <c>query-migrate</c> says completed (QEMU exits when a state cannot be
    /// loaded: its stderr is the error), then <c>cont</c>.
    /// </summary>
    private async Task LoadStateAsync(string state, TimeSpan timeout, CancellationToken cancellationToken)
    {
        state = Path.GetFullPath(state);
        var entry = LabJournal.Current.Begin("qmp", $"migrate-incoming exec:cat {state}; cont");
        try
        {
            if (!File.Exists(state))
            {
                throw new LabUsageException($"no saved VM state at {state}");
            }
            await Qmp.ExecuteAsync("migrate-incoming", QmpJson.Args(new MigrateArguments("exec:cat " + ShellQuote.Quote(state))), cancellationToken: cancellationToken).ConfigureAwait(false);
            await Poll.UntilAsync(async ct =>
            {
                if (HasExited)
                {
                    throw new LabException($"QEMU exited while loading the saved VM state {state}: {Tail(StandardError, 3)}");
                }
                var reply = await Qmp.ExecuteAsync("query-migrate", cancellationToken: ct).ConfigureAwait(false) as JsonObject;
                var status = reply?["status"]?.GetValue<string>() ?? "none";
                if (status is "failed" or "cancelled")
                {
                    throw new LabException($"loading the saved VM state {state} {status}: {reply?["error-desc"]?.GetValue<string>() ?? Tail(StandardError, 3)}");
                }
                return (status == "completed", true, $"status {status}");
            }, $"the saved VM state {Path.GetFileName(state)} to load", timeout, new Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200), 1.5), Options.Time, cancellationToken).ConfigureAwait(false);
            await Qmp.ExecuteAsync("cont", cancellationToken: cancellationToken).ConfigureAwait(false);
            entry.Complete("loaded, running");
        }
        catch (QmpDisconnectedException e)
        {
            entry.Fail(e.Message);
            throw new LabException($"QEMU closed its monitor while loading the saved VM state {state}: {Tail(StandardError, 3)}", e);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    /// <summary>Waits for the guest agent to answer (after a resume, for example), failing at once if QEMU exits.</summary>
    public Task WaitForAgentAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitForAgentAsync(timeout, Stopwatch.StartNew(), cancellationToken);

    private async Task WaitForAgentAsync(TimeSpan timeout, Stopwatch sinceStart, CancellationToken cancellationToken)
    {
        try
        {
            var attempts = await Agent.WaitUntilReadyAsync(timeout, () => HasExited ? "QEMU exited" : null, cancellationToken).ConfigureAwait(false);
            if (BootToAgent is null)
            {
                BootToAgent = sinceStart.Elapsed;
                _steps.Add(($"agent answered ({attempts} guest-sync {(attempts == 1 ? "attempt" : "attempts")})", sinceStart.Elapsed));
            }
        }
        catch (LabTimeoutException)
        {
            throw new LabTimeoutException("the guest agent to answer", timeout, $"console log tail: {Tail(ReadConsole(), 5)}");
        }
    }

    /// <summary>Everything the guest printed on its serial console so far.</summary>
    public string ReadConsole()
    {
        try
        {
            using var fs = new FileStream(ConsoleLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(fs);
            return reader.ReadToEnd();
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>What QEMU wrote to stderr so far.</summary>
    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    private LabException EarlyExitError(string when, Exception? inner = null)
    {
        var code = _process.HasExited ? _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "?";
        return new LabException(
            $"QEMU exited (code {code}) {when}. stderr: {Tail(StandardError, 5)} | console: {Tail(ReadConsole(), 5)}", inner);
    }

    private static string Tail(string text, int lines)
    {
        var l = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return l.Length == 0 ? "(empty)" : string.Join(" | ", l.TakeLast(lines));
    }

    /// <summary>
    /// Shuts the guest down and waits for QEMU to exit: guest-agent shutdown (the guest flushes and powers off),
    /// then QMP <c>quit</c> (QEMU closes its images cleanly), then kill. Returns how it ended.
    /// </summary>
    public async Task<ShutdownOutcome> ShutdownAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        if (HasExited)
        {
            return ShutdownOutcome.AlreadyExited;
        }
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (_agent is not null)
        {
            try
            {
                await _agent.ShutdownAsync(cancellationToken).ConfigureAwait(false);
                if (await WaitExitAsync(limit, cancellationToken).ConfigureAwait(false))
                {
                    return ShutdownOutcome.GuestPoweredOff;
                }
            }
            catch (LabException)
            {
                // Fall through to QMP.
            }
        }
        try
        {
            if (Qmp.IsConnected)
            {
                await Qmp.ExecuteAsync("quit", timeout: TimeSpan.FromSeconds(10), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }
        catch (LabException)
        {
            // quit's reply may be lost as QEMU closes the socket.
        }
        if (await WaitExitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            return ShutdownOutcome.QmpQuit;
        }
        await KillAsync().ConfigureAwait(false);
        return ShutdownOutcome.Killed;
    }

    private Task<bool> WaitExitAsync(TimeSpan limit, CancellationToken cancellationToken) =>
        ExitsWithinAsync(Exited, $"QEMU {Options.Name} to exit", limit, Options.Time, cancellationToken);

    /// <summary>
    /// True when <paramref name="exited"/> completes within <paramref name="limit"/> on <paramref name="time"/>'s clock
    /// (the one wait, <see cref="Poll.ForAsync(Task, string, TimeSpan, Func{string?}?, Action?, TimeProvider?, CancellationToken)"/>);
    /// false when the limit passes first or the wait is cancelled: for a shutdown either means going on to the next,
    /// harder step.
    /// </summary>
    internal static async Task<bool> ExitsWithinAsync(Task exited, string awaited, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            await Poll.ForAsync(exited, awaited, limit, time: time, cancellationToken: cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is LabTimeoutException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    /// <summary>Kills QEMU at once (the images are left as a power cut leaves them).</summary>
    public async Task KillAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
        await _process.WaitForExitAsync().ConfigureAwait(false);
        _exited.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!HasExited)
        {
            await ShutdownAsync().ConfigureAwait(false);
        }
        _exitHook?.Dispose();
        if (Ssh is not null)
        {
            await Ssh.DisposeAsync().ConfigureAwait(false);
        }
        if (_agent is not null)
        {
            await _agent.DisposeAsync().ConfigureAwait(false);
        }
        if (Qmp is not null)
        {
            await Qmp.DisposeAsync().ConfigureAwait(false);
        }
        _process.Dispose();
        if (_ownsRuntimeFolder)
        {
            LabPaths.TryDeleteFolder(RuntimeFolder);
        }
    }

    /// <summary>
    /// For a process that is exiting (SIGTERM, SIGINT, normal exit) with machines still running: QMP <c>quit</c>
    /// so QEMU closes its images cleanly, kill after a short grace. Blocking on purpose: the process is ending.
    /// </summary>
    internal void QuitForProcessExit()
    {
        if (HasExited)
        {
            return;
        }
        try
        {
            if (Qmp is { IsConnected: true })
            {
                Qmp.ExecuteAsync("quit", timeout: TimeSpan.FromSeconds(3)).Wait(TimeSpan.FromSeconds(3));
            }
        }
        catch (AggregateException)
        {
        }
        if (!_process.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
        // Its sockets and console log go with it, as a disposal takes them (once QEMU is gone: it writes the log).
        if (_ownsRuntimeFolder && _process.WaitForExit(TimeSpan.FromSeconds(2)))
        {
            LabPaths.TryDeleteFolder(RuntimeFolder);
        }
    }

    internal static IReadOnlyList<string> BuildArguments(MachineOptions o, AcceleratorChoice accel, string runtime, int? sshPort)
    {
        var a = new List<string>
        {
            "-name", o.Name,
            "-nodefaults", "-no-user-config", "-display", "none",
            "-machine", "q35",
            "-m", o.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-smp", o.Cpus.ToString(CultureInfo.InvariantCulture),
        };
        a.AddRange(accel.QemuArguments);
        a.AddRange(["-qmp", $"unix:{Path.Combine(runtime, "qmp.sock")},server=on,wait=off"]);
        a.AddRange(["-serial", $"file:{Path.Combine(runtime, "console.log")}"]);
        if (o.Kernel is not null)
        {
            a.AddRange(["-kernel", o.Kernel]);
            if (o.Initrd is not null)
            {
                a.AddRange(["-initrd", o.Initrd]);
            }
            if (o.KernelCommandLine is not null)
            {
                a.AddRange(["-append", o.KernelCommandLine]);
            }
        }
        foreach (var d in o.Drives)
        {
            var ro = d.ReadOnly ? "on" : "off";
            a.AddRange(["-blockdev", $"driver=file,filename={EscapeOption(d.File)},node-name={d.NodeName}-file,read-only={ro}"]);
            a.AddRange(["-blockdev", $"driver={d.Format},file={d.NodeName}-file,node-name={d.NodeName},read-only={ro}"]);
            a.AddRange(["-device", $"virtio-blk-pci,drive={d.NodeName},id={d.NodeName}-dev"]);
        }
        if (o.GuestAgent)
        {
            a.AddRange(["-chardev", $"socket,id=qga0,path={Path.Combine(runtime, "qga.sock")},server=on,wait=off"]);
            a.AddRange(["-device", "virtio-serial-pci,id=vser0", "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"]);
        }
        if (sshPort is { } port)
        {
            a.AddRange(["-netdev", $"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=net0"]);
        }
        if (o.StartPaused || o.IncomingState is not null)
        {
            a.Add("-S");
        }
        if (o.IncomingState is not null)
        {
            a.AddRange(["-incoming", "defer"]);
        }
        a.AddRange(o.ExtraArguments);
        return a;
    }

    /// <summary>QEMU option values escape a comma by doubling it.</summary>
    internal static string EscapeOption(string value) => value.Replace(",", ",,");

    private static int FreeLoopbackPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>How <see cref="QemuMachine.ShutdownAsync"/> ended the machine, gentlest first.</summary>
public enum ShutdownOutcome
{
    /// <summary>QEMU had exited before the call.</summary>
    AlreadyExited,

    /// <summary>The guest powered itself off when the agent asked (its filesystems flushed and unmounted).</summary>
    GuestPoweredOff,

    /// <summary>QMP <c>quit</c>: QEMU closed its images cleanly; the guest did not shut down.</summary>
    QmpQuit,

    /// <summary>Neither worked within the limits: QEMU was killed.</summary>
    Killed,
}

/// <summary>
/// The arguments of <c>migrate</c> and <c>migrate-incoming</c> as the lab sends them: a single URI, an
/// <c>exec:</c> pipe to or from a file, because the lab saves and loads VM state through files only.
/// </summary>
internal sealed record MigrateArguments(string Uri);
