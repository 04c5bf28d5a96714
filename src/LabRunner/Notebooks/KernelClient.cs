using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LabKernel;
using LabKernel.Processes;

namespace LabRunner.Notebooks;

/// <summary>
/// The runner's handle on a kernel process (<c>lab __kernel</c>, the same lab executable). This is the one
/// program the lab drives interactively rather than through <see cref="ProcessRunner"/>: cells go in one at
/// a time, messages come back as they happen, and <see cref="Kill"/> stops a cell that ran out of time.
/// </summary>
internal sealed class KernelClient : IAsyncDisposable
{
    /// <summary>The hidden <c>lab</c> command that runs the notebook kernel process (JSON lines on stdin/stdout).</summary>
    public const string KernelCommandName = "__kernel";

    private readonly Process _process;
    private readonly Channel<JsonObject> _messages = Channel.CreateUnbounded<JsonObject>();
    private readonly Task _reader;
    private readonly Task _errReader;
    private readonly StringBuilder _stderr = new();

    /// <summary>How long an idle kernel may take to end by itself; see <see cref="NotebookRunner.KernelCleanupLimit"/>.</summary>
    public static readonly TimeSpan DefaultCleanupLimit = TimeSpan.FromSeconds(90);

    private readonly TimeSpan _cleanupLimit;

    private KernelClient(Process process, TimeSpan cleanupLimit)
    {
        _process = process;
        _cleanupLimit = cleanupLimit;
        _reader = Task.Run(ReadOutputAsync);
        _errReader = Task.Run(async () =>
        {
            while (await _process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                lock (_stderr)
                {
                    _stderr.Append(line).Append('\n');
                }
            }
        });
    }

    public static KernelClient Start(string workingDirectory, TimeSpan cleanupLimit, IReadOnlyDictionary<string, string>? environment = null)
    {
        var (file, prefix) = KernelCommandLine();
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in prefix)
        {
            psi.ArgumentList.Add(a);
        }
        psi.ArgumentList.Add(KernelCommandName);
        psi.Environment["LABKERNEL_PLOTLY_EMBED"] = "none";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        // Where the kernel passes on a SIGINT it receives (RunInterruption.ForwardToRunner).
        psi.Environment[RunInterruption.RunnerPidVariable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (name, value) in KernelJit.Settings(Environment.GetEnvironmentVariable))
        {
            psi.Environment[name] = value;
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }
        var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LabException($"cannot start the notebook kernel ({file}): {e.Message}", e);
        }
        return new KernelClient(process, cleanupLimit);
    }

    /// <summary>How to start this lab again: its apphost, or `dotnet lab.dll` when run through the dotnet host.</summary>
    internal static (string File, string[] Prefix) KernelCommandLine()
    {
        var labDll = typeof(KernelClient).Assembly.Location;
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath)
            ? hostPath
            : ProcessRunner.Which("dotnet") ?? "dotnet";
        return (dotnet, [labDll]);
    }

    public int ProcessId => _process.Id;

    public void Send(JsonObject message)
    {
        if (KernelProtocol.TypeOf(message) is KernelProtocol.Init or KernelProtocol.Execute)
        {
            Volatile.Write(ref _busy, 1);
        }
        _process.StandardInput.Write(KernelProtocol.Serialize(message));
        _process.StandardInput.Write('\n');
        _process.StandardInput.Flush();
    }

    /// <summary>The next message; null when the kernel process has exited.</summary>
    public async Task<JsonObject?> ReceiveAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _messages.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>What the kernel wrote to stderr outside any cell (crash reports).</summary>
    public string StandardErrorTail
    {
        get
        {
            lock (_stderr)
            {
                var lines = _stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                return string.Join('\n', lines.TakeLast(10));
            }
        }
    }

    /// <summary>
    /// Stops the kernel: SIGTERM first, so LabKernel can quit the QEMU machines it started and leave their
    /// images closed cleanly, then the whole process tree is killed if it is still there after a grace period.
    /// </summary>
    public void Kill()
    {
        try
        {
            // The grace covers the exit hooks: a libvirt destroy alone may wait 10 s for QEMU before it kills it.
            if (!_process.HasExited && kill(_process.Id, SigTerm) == 0 && _process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                return;
            }
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    /// <summary>
    /// True when the kernel process was ended by SIGINT: a Ctrl-C that reached it before it could pass it on to the
    /// runner (in its first moments). Waits a little for the process to be reaped after its output ended.
    /// </summary>
    public bool DiedOfInterrupt()
    {
        try
        {
            // .NET reports a process ended by a signal as 128 and the signal's number.
            return _process.WaitForExit(TimeSpan.FromSeconds(5)) && _process.ExitCode == 128 + SigInt;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private const int SigInt = 2;
    private const int SigTerm = 15;

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>
    /// Ends the kernel. An idle kernel ends by itself once its stdin closes, and runs its exit clean-up first (QEMU
    /// machines quit, lab-made domains destroyed and undefined): that is waited for, up to the clean-up limit, since
    /// a SIGTERM in the middle of it ends the process between a domain's destroy and its undefine. A kernel still
    /// inside a cell (the run was cancelled) or past the limit is stopped with <see cref="Kill"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        var busy = Volatile.Read(ref _busy) != 0;
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
        }
        using var limit = new CancellationTokenSource(busy ? TimeSpan.FromSeconds(2) : _cleanupLimit);
        try
        {
            await _process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
        await Task.WhenAll(_reader, _errReader).ConfigureAwait(false);
        _process.Dispose();
    }

    /// <summary>1 from sending init or a cell until the kernel's ready or done for it.</summary>
    private int _busy;

    private async Task ReadOutputAsync()
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                var message = KernelProtocol.TryParse(line)
                    ?? new JsonObject { ["type"] = KernelProtocol.Stream, ["name"] = "stdout", ["text"] = line + "\n" };
                if (KernelProtocol.TypeOf(message) is KernelProtocol.Ready or KernelProtocol.Done)
                {
                    Volatile.Write(ref _busy, 0);
                }
                await _messages.Writer.WriteAsync(message).ConfigureAwait(false);
            }
        }
        finally
        {
            _messages.Writer.TryComplete();
        }
    }
}
