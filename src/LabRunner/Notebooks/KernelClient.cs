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

    private KernelClient(Process process)
    {
        _process = process;
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

    public static KernelClient Start(string workingDirectory)
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
        var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LabException($"cannot start the notebook kernel ({file}): {e.Message}", e);
        }
        return new KernelClient(process);
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
            if (!_process.HasExited && kill(_process.Id, SigTerm) == 0 && _process.WaitForExit(TimeSpan.FromSeconds(8)))
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

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
        }
        // An idle kernel exits as soon as its stdin closes; one still inside a cell (the run was cancelled) is killed.
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
        await Task.WhenAll(_reader, _errReader).ConfigureAwait(false);
        _process.Dispose();
    }

    private async Task ReadOutputAsync()
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                var message = KernelProtocol.TryParse(line)
                    ?? new JsonObject { ["type"] = KernelProtocol.Stream, ["name"] = "stdout", ["text"] = line + "\n" };
                await _messages.Writer.WriteAsync(message).ConfigureAwait(false);
            }
        }
        finally
        {
            _messages.Writer.TryComplete();
        }
    }
}
