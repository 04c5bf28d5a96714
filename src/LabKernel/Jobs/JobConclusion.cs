using LabKernel.Qmp;

namespace LabKernel.Jobs;

/// <summary>
/// How a QEMU job's end becomes its outcome: on <c>JOB_STATUS_CHANGE</c> concluded, the error is read from
/// <c>query-jobs</c> (it lives there until the job is dismissed), the job is dismissed, and the end is a
/// <see cref="BlockJobResult"/> or a <see cref="BlockJobFailedException"/> (a cancelled job's "cancelled" error is no
/// failure). A lost connection becomes <see cref="BlockJobInterruptedException"/>, naming how far the job got.
/// </summary>
internal sealed class JobConclusion
{
    private readonly string _id;
    private readonly string _type;
    private readonly LabJobKind _kind;
    private readonly string? _disk;
    private readonly JobCommands _commands;
    private readonly JobState _state;
    private readonly TimeProvider _time;
    private readonly long _started;

    /// <summary>The result's elapsed time counts from <paramref name="started"/>, a timestamp on <paramref name="time"/>'s clock taken before the start command.</summary>
    public JobConclusion(string id, string type, LabJobKind kind, string? disk, JobCommands commands, JobState state, TimeProvider time, long started)
    {
        _id = id;
        _type = type;
        _kind = kind;
        _disk = disk;
        _commands = commands;
        _state = state;
        _time = time;
        _started = started;
    }

    /// <summary>
    /// The job concluded: reads its error and final progress, dismisses it, and ends <see cref="JobState.Completion"/>.
    /// <paramref name="eventError"/> is the error a <c>BLOCK_JOB_*</c> event carried (used when <c>query-jobs</c> has
    /// none), <paramref name="cancelledEvent"/> whether <c>BLOCK_JOB_CANCELLED</c> came.
    /// </summary>
    public async Task ConcludeAsync(string? eventError, bool cancelledEvent)
    {
        string? error = null;
        if (await _commands.QueryJobAsync().ConfigureAwait(false) is { } job)
        {
            error = job["error"]?.GetValue<string>();
            _state.KeepFinalProgress(job["current-progress"]?.GetValue<long>(), job["total-progress"]?.GetValue<long>());
        }
        error ??= eventError;
        await _commands.DismissAsync().ConfigureAwait(false);
        var cancelled = _commands.CancelRequested || cancelledEvent;
        var last = _state.Dismissed();
        if (error is not null && !(cancelled && IsCancellationError(error)))
        {
            _state.Fail(new BlockJobFailedException(_id, _type, error, _state.Errors));
            return;
        }
        _state.Succeed(new BlockJobResult(_id, _type, cancelled, _commands.CompleteRequested && !cancelled, last.Offset, last.Length, _time.GetElapsedTime(_started), _state.Errors)
        {
            Kind = _kind,
            Disk = _disk,
        });
    }

    /// <summary>A lost connection becomes the job's own error, naming it and how far it got; other errors stay as they are.</summary>
    public LabException Interrupted(LabException cause) =>
        cause is QmpDisconnectedException ? new BlockJobInterruptedException(_id, _type, _state.Last, cause) : cause;

    private static bool IsCancellationError(string error) =>
        error.Contains("cancel", StringComparison.OrdinalIgnoreCase);
}
