using System.Threading.Channels;
using LabKernel.Qmp;

namespace LabKernel.Jobs;

/// <summary>
/// Reads one job's QMP events in order and acts on each, as qemu-iotests' <c>run_job</c> does:
/// <c>JOB_STATUS_CHANGE</c> sets the status (ready → complete or cancel when <see cref="BlockJobOptions.OnReady"/> says
/// so, pending → <c>job-finalize</c> with auto-finalize off, concluded → <see cref="JobConclusion"/>);
/// <c>BLOCK_JOB_READY</c>/<c>COMPLETED</c>/<c>CANCELLED</c> carry offset, length and an error; <c>BLOCK_JOB_ERROR</c> is
/// an error the policy handled. With <see cref="BlockJobOptions.SampleOnEvents"/> each running state is also sampled,
/// so watchers see the offset at that moment. When the connection ends first, the job fails as interrupted.
/// </summary>
internal sealed class JobEventPump
{
    private readonly QmpEventListener _listener;
    private readonly BlockJobOptions _options;
    private readonly JobState _state;
    private readonly JobCommands _commands;
    private readonly JobConclusion _conclusion;
    private readonly Func<string, CancellationToken, Task<BlockJobProgress?>> _sample;
    private string? _eventError;
    private bool _cancelledEvent;

    /// <summary><paramref name="sample"/> samples the job now (<c>query-jobs</c> and <c>query-block-jobs</c>) with the trigger given; null when it cannot.</summary>
    public JobEventPump(QmpEventListener listener, BlockJobOptions options, JobState state, JobCommands commands, JobConclusion conclusion, Func<string, CancellationToken, Task<BlockJobProgress?>> sample)
    {
        _listener = listener;
        _options = options;
        _state = state;
        _commands = commands;
        _conclusion = conclusion;
        _sample = sample;
    }

    /// <summary>Runs until the job concluded or the connection ended; stops listening either way.</summary>
    public async Task RunAsync()
    {
        try
        {
            await foreach (var e in _listener.ReadAllAsync().ConfigureAwait(false))
            {
                if (await HandleAsync(e).ConfigureAwait(false))
                {
                    return;
                }
            }
            _state.Fail(_conclusion.Interrupted(new QmpDisconnectedException("QEMU closed the QMP connection")));
        }
        catch (Exception ex) when (ex is LabException or ChannelClosedException)
        {
            _state.Fail(_conclusion.Interrupted(ex as LabException ?? new QmpDisconnectedException("QEMU closed the QMP connection", ex)));
        }
        finally
        {
            _listener.Dispose();
        }
    }

    /// <summary>Handles one event; true when the job is over.</summary>
    private async Task<bool> HandleAsync(QmpEvent e)
    {
        switch (e.Name)
        {
            case "JOB_STATUS_CHANGE":
                var status = JobStatusText.Parse(e.GetString("status"));
                _state.SetStatus(status, e.Name, publish: !_options.SampleOnEvents);
                switch (status)
                {
                    case JobStatus.Ready:
                        _state.MarkReady();
                        if (_options.OnReady == ReadyAction.Complete && !_commands.CancelRequested && !_commands.CompleteRequested)
                        {
                            await _commands.CompleteAsync().ConfigureAwait(false);
                        }
                        else if (_options.OnReady == ReadyAction.Cancel && !_commands.CancelRequested && !_commands.CompleteRequested)
                        {
                            await _commands.CancelAsync(force: false).ConfigureAwait(false);
                        }
                        break;
                    case JobStatus.Pending when !_options.AutoFinalize && _options.FinalizeWhenPending:
                        await _commands.FinalizeAsync().ConfigureAwait(false);
                        break;
                    case JobStatus.Concluded:
                        await _conclusion.ConcludeAsync(_eventError, _cancelledEvent).ConfigureAwait(false);
                        return true;
                }
                if (_options.SampleOnEvents && status is JobStatus.Running or JobStatus.Ready or JobStatus.Paused or JobStatus.Standby)
                {
                    if (await _sample(e.Name, CancellationToken.None).ConfigureAwait(false) is { } s)
                    {
                        _state.Publish(s);
                    }
                }
                break;
            case "BLOCK_JOB_READY":
            case "BLOCK_JOB_COMPLETED":
            case "BLOCK_JOB_CANCELLED":
                if (e.Name == "BLOCK_JOB_CANCELLED")
                {
                    _cancelledEvent = true;
                }
                if (e.GetString("error") is { } err)
                {
                    _eventError = err;
                }
                _state.UpdateProgress(e.Data["offset"]?.GetValue<long>(), e.Data["len"]?.GetValue<long>(), e.Name);
                break;
            case "BLOCK_JOB_ERROR":
                _state.AddError(new BlockJobError(e.GetString("operation") ?? "?", e.GetString("action") ?? "?", e.Timestamp), e.Name);
                break;
        }
        return false;
    }
}
