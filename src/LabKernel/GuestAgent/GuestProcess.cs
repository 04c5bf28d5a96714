using System.Diagnostics;
using LabKernel.Host;

namespace LabKernel.GuestAgent;

/// <summary>A program running in the guest, started with <c>guest-exec</c>.</summary>
public sealed class GuestProcess
{
    /// <summary>The agent has no exit event: ask quickly at first, then every 50 ms at most.</summary>
    private static readonly Backoff ExitPolling = new(TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(50), 1.5);

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
        var awaited = $"guest command `{Processes.ShellQuote.Join(Command)}` to exit";
        try
        {
            return await Poll.UntilAsync(async ct => await TryGetResultAsync(ct).ConfigureAwait(false) is { } result ? (true, result, "") : (false, null!, ""),
                awaited, timeout, ExitPolling, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException e) when (e.Awaited == awaited)
        {
            // Past the limit the process is killed (an agent call that timed out on its own is not this wait's).
            await GuestExec.TryKillAsync(_agent, Pid, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }
}
