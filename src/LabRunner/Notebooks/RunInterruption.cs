using System.Globalization;
using System.Runtime.InteropServices;

namespace LabRunner.Notebooks;

/// <summary>
/// How a user stops <c>lab run</c>: Ctrl-C (SIGINT) or SIGTERM, at any moment of the run. The runner listens from the
/// start of the command, before its kernel process exists; a signal cancels <see cref="Token"/> and the runner stops
/// the current cell by stopping the kernel (whose exit hooks quit the guests it started), runs no further cell, writes
/// the notebook and report so far, and exits with <see cref="ExitCode"/>. The signal's default action (ending the
/// process at once, the kernel and its guests left running) is cancelled so that this clean-up happens.
/// </summary>
/// <remarks>
/// A terminal's Ctrl-C reaches every process of the run (runner, kernel, QEMU); a <c>kill -INT</c> reaches one. The
/// kernel passes a SIGINT of its own on to the runner (<see cref="ForwardToRunner"/>), so whichever process gets it,
/// the run stops the same way.
/// </remarks>
internal sealed class RunInterruption : IDisposable
{
    /// <summary>The runner's pid, in the kernel's environment: where the kernel passes a SIGINT on to.</summary>
    public const string RunnerPidVariable = "LAB_RUN_PID";

    private const int SigInt = 2;
    private static readonly nint SigDfl = 0;
    private static readonly nint SigIgn = 1;

    private readonly CancellationTokenSource _requested = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _signal;

    private RunInterruption(bool listen)
    {
        _registrations = listen
            ? [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)]
            : [];
    }

    /// <summary>Starts listening for SIGINT and SIGTERM in this process, until disposed.</summary>
    public static RunInterruption Listen() => new(listen: true);

    /// <summary>One that only <see cref="Request"/> sets off (tests).</summary>
    internal static RunInterruption Manual() => new(listen: false);

    /// <summary>Cancelled once the run is to stop.</summary>
    public CancellationToken Token => _requested.Token;

    public bool IsRequested => _requested.IsCancellationRequested;

    /// <summary>The first signal received; null while none was.</summary>
    public PosixSignal? Signal => Volatile.Read(ref _signal) is var s and not 0 ? (PosixSignal)s : null;

    /// <summary>130 for SIGINT, 143 for SIGTERM (128 and the signal's number, as a shell reports a process it ended).</summary>
    public int ExitCode => Signal == PosixSignal.SIGTERM ? RunExitCodes.Terminated : RunExitCodes.Interrupted;

    /// <summary>"SIGINT" or "SIGTERM", for messages.</summary>
    public string SignalName => Signal == PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT";

    /// <summary>Stops the run as <paramref name="signal"/> would.</summary>
    public void Request(PosixSignal signal)
    {
        // PosixSignal's values are negative, so 0 means none yet; the first signal names the interruption.
        Interlocked.CompareExchange(ref _signal, (int)signal, 0);
        try
        {
            _requested.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // A signal that arrives as the run ends finds nothing left to stop.
        }
    }

    private void OnSignal(PosixSignalContext context)
    {
        // A second Ctrl-C (or the one the kernel passes on) is the same request: the clean-up is bounded anyway.
        context.Cancel = true;
        Request(context.Signal);
    }

    /// <summary>
    /// For the kernel process: a SIGINT that reaches the kernel is passed on to the runner, which stops the run as for
    /// its own (and stops this kernel with SIGTERM). When the runner is gone (the kernel was orphaned) or this is no
    /// runner's kernel, the signal does what it would have done. Null when there is no runner to pass it to.
    /// </summary>
    public static IDisposable? ForwardToRunner()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(RunnerPidVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var runner) || runner <= 1)
        {
            return null;
        }
        return PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (getppid() == runner && kill(runner, SigInt) == 0)
            {
                context.Cancel = true;
            }
        });
    }

    /// <summary>
    /// Makes SIGINT reach this process again when it was started with SIGINT ignored, as a non-interactive shell starts
    /// a background command (<c>cmd &amp;</c>) and some CI runners start their jobs: .NET keeps an inherited ignore,
    /// and then no handler ever sees the signal (a <c>kill -INT</c> of <c>lab run</c> was lost that way and the
    /// notebook ran to its end). Must run before .NET sets up its signal handling (the first use of Console, Process
    /// or PosixSignalRegistration), that is first in Main.
    /// </summary>
    public static void StopIgnoringInterrupt()
    {
        // struct sigaction begins with its handler; the rest (mask, flags) fits in the buffer on every Linux ABI.
        var current = new nint[64];
        if (sigaction(SigInt, 0, current) == 0 && current[0] == SigIgn)
        {
            signal(SigInt, SigDfl);
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }
        _requested.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc")]
    private static extern int getppid();

    [DllImport("libc", SetLastError = true)]
    private static extern int sigaction(int signum, nint act, [Out] nint[] oldact);

    [DllImport("libc", SetLastError = true)]
    private static extern nint signal(int signum, nint handler);
}
