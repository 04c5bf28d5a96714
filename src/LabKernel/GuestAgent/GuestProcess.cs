using System.Diagnostics;

namespace LabKernel.GuestAgent;

/// <summary>A program running in the guest, started with <c>guest-exec</c>.</summary>
public sealed class GuestProcess
{
    private readonly IGuestAgent _agent;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private GuestExecResult? _result;

    internal GuestProcess(IGuestAgent agent, long pid, IReadOnlyList<string> command)
    {
        _agent = agent;
        Pid = pid;
        Command = command;
    }

    /// <summary>The process id in the guest.</summary>
    public long Pid { get; }

    public IReadOnlyList<string> Command { get; }

    /// <summary>Time since it was started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Asks the agent once whether it has exited (<c>guest-exec-status</c>); null while it runs.</summary>
    public async Task<GuestExecResult?> TryGetResultAsync(CancellationToken cancellationToken = default)
    {
        _result ??= await GuestExec.TryGetExitAsync(_agent, this, cancellationToken).ConfigureAwait(false);
        return _result;
    }

    /// <summary>
    /// Waits for the process to exit. The agent has no exit event, so this asks <c>guest-exec-status</c>,
    /// quickly at first and then every 50 ms at most; past <paramref name="timeout"/> the process is killed and
    /// the error names the command.
    /// </summary>
    public async Task<GuestExecResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var delay = TimeSpan.FromMilliseconds(2);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (await TryGetResultAsync(cancellationToken).ConfigureAwait(false) is { } result)
            {
                return result;
            }
            if (waited.Elapsed > timeout)
            {
                await GuestExec.TryKillAsync(_agent, Pid, cancellationToken).ConfigureAwait(false);
                throw new LabTimeoutException($"guest command `{Processes.ShellQuote.Join(Command)}` to exit", timeout);
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 3 / 2, TimeSpan.FromMilliseconds(50).Ticks));
        }
    }
}
