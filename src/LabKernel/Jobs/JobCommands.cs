using System.Text.Json.Nodes;
using LabKernel.Qmp;

namespace LabKernel.Jobs;

/// <summary>
/// Every QMP command the lab sends about one job once it started: the actions that drive it (<c>job-complete</c>,
/// <c>block-job-cancel</c>, <c>job-pause</c>, <c>job-resume</c>, <c>block-job-set-speed</c>, <c>job-finalize</c>,
/// <c>job-dismiss</c>) and the queries that read it (its entries in <c>query-jobs</c> and <c>query-block-jobs</c>).
/// It remembers whether the caller asked to complete or to cancel: the result says which, and a job set to complete
/// or cancel at READY does neither once the caller asked first.
/// </summary>
internal sealed class JobCommands(QmpClient qmp, string id)
{
    private volatile bool _completeRequested;
    private volatile bool _cancelRequested;

    /// <summary><see cref="CompleteAsync"/> was called.</summary>
    public bool CompleteRequested => _completeRequested;

    /// <summary><see cref="CancelAsync"/> was called.</summary>
    public bool CancelRequested => _cancelRequested;

    /// <summary><c>job-complete</c>: pivots a READY job.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        _completeRequested = true;
        await qmp.ExecuteAsync("job-complete", QmpJson.Args(new JobIdArguments(id)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>block-job-cancel</c>, forced or not (see <see cref="BlockJob.CancelAsync(bool, CancellationToken)"/>).</summary>
    public async Task CancelAsync(bool force, CancellationToken cancellationToken = default)
    {
        _cancelRequested = true;
        await qmp.ExecuteAsync("block-job-cancel", QmpJson.Args(new BlockJobCancelArguments(id, force)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>job-pause</c>.</summary>
    public Task PauseAsync(CancellationToken cancellationToken) =>
        qmp.ExecuteAsync("job-pause", QmpJson.Args(new JobIdArguments(id)), cancellationToken: cancellationToken);

    /// <summary><c>job-resume</c>.</summary>
    public Task ResumeAsync(CancellationToken cancellationToken) =>
        qmp.ExecuteAsync("job-resume", QmpJson.Args(new JobIdArguments(id)), cancellationToken: cancellationToken);

    /// <summary><c>block-job-set-speed</c>: bytes per second, 0 for unlimited.</summary>
    public Task SetSpeedAsync(long bytesPerSecond, CancellationToken cancellationToken) =>
        qmp.ExecuteAsync("block-job-set-speed", QmpJson.Args(new BlockJobSetSpeedArguments(id, bytesPerSecond)), cancellationToken: cancellationToken);

    /// <summary><c>job-finalize</c>: a PENDING job with auto-finalize off applies its change to the graph.</summary>
    public Task FinalizeAsync() => qmp.ExecuteAsync("job-finalize", QmpJson.Args(new JobIdArguments(id)));

    /// <summary><c>job-dismiss</c>: QEMU forgets a concluded job (and its error).</summary>
    public Task DismissAsync() => qmp.ExecuteAsync("job-dismiss", QmpJson.Args(new JobIdArguments(id)));

    /// <summary>The job's entry in <c>query-jobs</c> (state, progress, error); null when QEMU does not list it.</summary>
    public async Task<JsonObject?> QueryJobAsync(CancellationToken cancellationToken = default) =>
        Find(await qmp.ExecuteAsync("query-jobs", cancellationToken: cancellationToken).ConfigureAwait(false), "id");

    /// <summary>The job's entry in <c>query-block-jobs</c> (offset, len, io-status); null when QEMU does not list it.</summary>
    public async Task<JsonObject?> QueryBlockJobAsync(CancellationToken cancellationToken = default) =>
        Find(await qmp.ExecuteAsync("query-block-jobs", cancellationToken: cancellationToken).ConfigureAwait(false), "device");

    private JsonObject? Find(JsonNode? list, string key) =>
        (list as JsonArray)?.OfType<JsonObject>().FirstOrDefault(j => j[key]?.GetValue<string>() == id);

    /// <summary>
    /// The arguments of the job commands that name a job by its id alone: <c>job-complete</c>, <c>job-pause</c>,
    /// <c>job-resume</c>, <c>job-finalize</c> and <c>job-dismiss</c>.
    /// </summary>
    private sealed record JobIdArguments(string Id);

    /// <summary>
    /// <c>block-job-cancel</c>'s arguments. The block-job commands still name a job <c>device</c>; for a job started
    /// with a <c>job-id</c> that is the id.
    /// </summary>
    private sealed record BlockJobCancelArguments(string Device, bool Force);

    /// <summary><c>block-job-set-speed</c>'s arguments: the job (as <c>device</c>) and its limit in bytes per second.</summary>
    private sealed record BlockJobSetSpeedArguments(string Device, long Speed);
}
