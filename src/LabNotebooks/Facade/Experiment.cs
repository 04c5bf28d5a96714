using System.Net;
using LabKernel;
using LabKernel.Backends;
using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Integrity;
using LabKernel.Journal;

namespace LabNotebooks;

/// <summary>
/// One running experiment (from <see cref="Lab.StartAsync"/>): its guest, run folder, findings and journal, and
/// the steps the source documents repeat, one call each: quiescing around an action, a checked shell command in
/// the guest, reading a layer offline, booting a copy, checking images. <see cref="FinishAsync"/> ends it: the
/// guest is stopped (or your domain handed back), the lab's files are removed or kept, and the journal shows.
/// </summary>
public sealed class Experiment : IAsyncDisposable
{
    private bool _finished;

    private readonly LabKernel.Host.ILabHost? _ownedHost;

    internal Experiment(ExperimentRun run, ILabGuest guest, LabJournal journal, LabKernel.Host.ILabHost? ownedHost = null)
    {
        Run = run;
        Guest = guest;
        Journal = journal;
        _ownedHost = ownedHost;
    }

    public ExperimentRun Run { get; }
    public ILabGuest Guest { get; }

    /// <summary>
    /// The machine the guest's images are on (<see cref="ILabGuest.Host"/>): this one, or your domain's hypervisor
    /// over SSH. Every image path the experiment hands out is a path there.
    /// </summary>
    public LabKernel.Host.ILabHost Host => Guest.Host;

    /// <summary>qemu-img on the machine the images are on: <c>lab.QemuImg.InfoAsync(overlay)</c>.</summary>
    public QemuImg QemuImg => QemuImg.On(Host);
    public LabJournal Journal { get; }
    public Findings Findings => Run.Findings;
    public IGuestAgent Agent => Guest.Agent;
    public ILabBlock Block => Guest.Block;

    /// <summary>The root disk as block operations name it (<c>disk0</c> on QEMU, <c>vda</c> on libvirt).</summary>
    public string Disk => Guest.Disk;

    /// <summary>The lab's data disks as block operations name them (<see cref="DataDiskDevices"/>: as the guest sees them).</summary>
    public IReadOnlyList<string> DataDisks => Guest.DataDisks;

    /// <summary>
    /// The lab's data disks as the guest sees them: <c>/dev/vdb</c>, ... on the embedded guest; on your domain, where
    /// they are hot-plugged after its own disks, the devices the guest gave them.
    /// </summary>
    public IReadOnlyList<string> DataDiskDevices => Guest.DataDiskDevices;

    /// <summary>
    /// Puts data disk <paramref name="disk"/> on <paramref name="image"/> (an image the lab made, e.g. a fresh overlay
    /// over an older layer: an external revert): the embedded guest boots again on it; on your domain, which the lab
    /// does not boot onto other images, the disk is unmounted, unplugged and the image plugged in its place while the
    /// guest runs. Returns the device the guest sees it as (mount it again: nothing is mounted from it).
    /// </summary>
    public async Task<string> PutDataDiskOnAsync(string disk, string image, CancellationToken cancellationToken = default)
    {
        var index = DataDisks.ToList().IndexOf(disk);
        if (index < 0)
        {
            throw new LabUsageException($"{disk} is not one of the lab's data disks ({string.Join(", ", DataDisks)})");
        }
        if (Can(LabCapabilities.SwapDataDisks))
        {
            await Guest.SwapDataDiskAsync(disk, image, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await Guest.BootAgainAsync(new Dictionary<string, string> { [disk] = image }, cancellationToken).ConfigureAwait(false);
        }
        return DataDiskDevices[index];
    }

    /// <summary>The run folder.</summary>
    public string Folder => Run.Folder;

    public bool Can(LabCapabilities capability) => (Guest.Capabilities & capability) == capability;

    /// <summary>A path in the run folder for a file the lab is about to make (default name <c>ROLE.qcow2</c>).</summary>
    public string NewFile(string role, string? fileName = null) => Run.NewFile(role, fileName ?? $"{role}.qcow2");

    /// <summary>What runs where, one line, for the notebook.</summary>
    public HtmlView Describe() => HtmlView.Paragraph($"Guest: {Guest.Description}.");

    /// <summary>
    /// Runs <paramref name="action"/> with the guest quiesced as <paramref name="mode"/> asks: <c>none</c> (as the
    /// documents do), <c>sync</c> (the guest's <c>sync</c> first) or <c>fsfreeze</c> (filesystems frozen through
    /// the agent for the action, thawed after, also when it fails).
    /// </summary>
    public Task<T> QuiescedAsync<T>(string mode, Func<Task<T>> action, CancellationToken cancellationToken = default) =>
        QuiescedAsync(ParseQuiesce(mode), action, cancellationToken);

    /// <summary>As <see cref="QuiescedAsync{T}(string, Func{Task{T}}, CancellationToken)"/>, with the mode typed.</summary>
    public async Task<T> QuiescedAsync<T>(QuiesceMode mode, Func<Task<T>> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        switch (mode)
        {
            case QuiesceMode.FsFreeze:
                await Agent.FreezeAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    return await action().ConfigureAwait(false);
                }
                finally
                {
                    await Agent.ThawAsync(CancellationToken.None).ConfigureAwait(false);
                }
            case QuiesceMode.Sync:
                await Agent.ExecAsync(["sync"], new GuestExecOptions { Check = true }, cancellationToken).ConfigureAwait(false);
                return await action().ConfigureAwait(false);
            default:
                return await action().ConfigureAwait(false);
        }
    }

    /// <summary>A one-line <see cref="LabUsageException"/> unless <paramref name="mode"/> is none, sync or fsfreeze; returns it normalised.</summary>
    public static string CheckQuiesce(string? mode) => ParseQuiesce(mode).ToString().ToLowerInvariant();

    /// <summary>The notebook parameter <c>Quiesce</c> (none, sync or fsfreeze, any case) as a <see cref="QuiesceMode"/>; anything else is a one-line <see cref="LabUsageException"/>.</summary>
    public static QuiesceMode ParseQuiesce(string? mode) => (mode ?? "").Trim().ToLowerInvariant() switch
    {
        "none" => QuiesceMode.None,
        "sync" => QuiesceMode.Sync,
        "fsfreeze" => QuiesceMode.FsFreeze,
        _ => throw new LabUsageException($"Quiesce must be none, sync or fsfreeze, not '{mode}'"),
    };

    /// <summary>Runs a shell script in the guest through the agent; fails with its exit code and stderr; returns stdout.</summary>
    public async Task<string> ShAsync(string script, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var result = await Agent.ShellAsync(script, new GuestExecOptions { Check = true, Timeout = timeout ?? TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
        return result.StandardOutput;
    }

    /// <summary>Opens <paramref name="image"/> (with its backing chain) read-only from a scratch copy, for files in its ext4.</summary>
    public Task<OfflineLayerReader> ReadOfflineAsync(string image, CancellationToken cancellationToken = default) =>
        OfflineLayerReader.OpenAsync(image, Run.ImageFolder, cancellationToken, Host);

    /// <summary>
    /// Boots <paramref name="image"/> as a second guest through a throwaway overlay (the image is never written).
    /// Needs <see cref="LabCapabilities.BootCopies"/>: the image must hold the lab's guest system.
    /// </summary>
    public Task<BootedCopy> BootCopyAsync(string image, string name = "copy", CancellationToken cancellationToken = default)
    {
        if (!Can(LabCapabilities.BootCopies))
        {
            throw new LabUsageException("booting a copy needs the embedded guest's image (a copy of your domain's disk has no kernel the lab knows how to boot)");
        }
        return BootedCopy.StartAsync(image, Run.Folder, name, cancellationToken);
    }

    /// <summary>
    /// The files of <paramref name="image"/> (with its backing chain) as the guest would see them: a copy booted as a
    /// second guest when <paramref name="boot"/> and the guest can (<see cref="LabCapabilities.BootCopies"/>),
    /// otherwise read offline (a scratch copy, its journal replayed): a user's domain's disk has no kernel the lab
    /// boots. Either way the image is never written. Dispose the view.
    /// </summary>
    public async Task<CopyView> OpenCopyAsync(string image, string name = "copy", bool boot = true, CancellationToken cancellationToken = default)
    {
        if (BootsCopies(boot))
        {
            var copy = await BootedCopy.StartAsync(image, Run.Folder, name, cancellationToken).ConfigureAwait(false);
            return new CopyView(copy.Files, "booted as a second guest", copy);
        }
        var reader = await ReadOfflineAsync(image, cancellationToken).ConfigureAwait(false);
        return new CopyView(reader, "read offline", reader);
    }

    /// <summary>
    /// The guest's QEMU monitor as a <see cref="BlockLayer"/> (mirrors, commits, HMP): the machine's own QMP, or
    /// libvirt's monitor passthrough (what <c>virsh qemu-monitor-command</c> uses). The same one each time.
    /// </summary>
    public Task<BlockLayer> MonitorAsync(CancellationToken cancellationToken = default) => Guest.OpenMonitorAsync(cancellationToken);

    /// <summary>An HMP command as the documents type it (<c>stop</c>, <c>c</c>, <c>info block-jobs</c>); returns QEMU's reply.</summary>
    public async Task<string> HmpAsync(string command, CancellationToken cancellationToken = default) =>
        await (await MonitorAsync(cancellationToken).ConfigureAwait(false)).Qmp.HumanMonitorCommandAsync(command, cancellationToken: cancellationToken).ConfigureAwait(false);

    /// <summary>Image sizes measured along the experiment (<c>await lab.Sizes.MeasureAsync(step, files)</c>), for findings and tables.</summary>
    public ImageSizeLog Sizes => _sizes ??= new ImageSizeLog(Host);

    private ImageSizeLog? _sizes;

    /// <summary>
    /// Checks the file <paramref name="workloads"/> in a copy of the disk: booted as a second guest when
    /// <paramref name="boot"/> and the guest can (<see cref="LabCapabilities.BootCopies"/>; the copy is never
    /// written, its SHA-256 before and after proves it), otherwise read offline.
    /// </summary>
    public Task<CopyCheck> CheckCopyAsync(string image, IReadOnlyList<FileOpsWorkload> workloads, bool boot = true, CancellationToken cancellationToken = default) =>
        BootsCopies(boot)
            ? CopyCheck.BootedAsync(image, Run.Folder, $"{Guest.Name}-copy", workloads, cancellationToken)
            : CopyCheck.OfflineAsync(image, Run.ImageFolder, workloads, cancellationToken, Host);

    /// <summary>Whether a copy is booted: asked for, and the guest's disk holds the lab's system (<see cref="LabCapabilities.BootCopies"/>).</summary>
    private bool BootsCopies(bool boot) => boot && Can(LabCapabilities.BootCopies);

    /// <summary>Every file the guest's QEMU holds open (resolved <c>/proc/PID/fd</c> targets); null when its process id is unknown.</summary>
    public IReadOnlyList<string>? OpenFiles() => Guest.QemuProcessId is { } pid ? ProcessFiles.OpenBy(pid) : null;

    /// <summary>
    /// The qcow2 images the guest's QEMU holds open now (<c>/proc/PID/fd</c>); null when its process is not known
    /// (then nothing can be said about them, which is not the same as "none").
    /// </summary>
    public IReadOnlyList<string>? OpenImages() => Guest.QemuProcessId is { } pid ? ProcessFiles.OpenBy(pid, ".qcow2") : null;

    /// <summary>Moves a file the lab made into <paramref name="subfolder"/> of the run folder, under <paramref name="role"/>; returns the new path.</summary>
    public Task<string> MoveIntoAsync(string subfolder, string file, string role, CancellationToken cancellationToken = default) => Run.MoveIntoAsync(subfolder, file, role, cancellationToken);

    /// <summary>Whether this guest's backend has snapshots of <paramref name="kind"/>.</summary>
    public bool Supports(SnapshotKind kind) => GuestSnapshots.Supports(Guest, kind);

    /// <summary>
    /// A snapshot of the root disk of the given kind, the way the backend makes it, timed, with the longest stretch
    /// the guest did not answer meanwhile (see <see cref="SnapshotTaken"/>). New files are the run's.
    /// </summary>
    public Task<SnapshotTaken> SnapshotAsync(SnapshotKind kind, string name, CancellationToken cancellationToken = default) =>
        GuestSnapshots.TakeAsync(Guest, Disk, kind, name, (role, file) => Run.NewFile(role, file), cancellationToken);

    /// <summary>Reverts the guest to a snapshot the way its backend can; returns how (see <see cref="GuestSnapshots.RevertAsync"/>).</summary>
    public Task<RevertDone> RevertAsync(SnapshotTaken snapshot, CancellationToken cancellationToken = default) =>
        GuestSnapshots.RevertAsync(Guest, Disk, snapshot, (role, file) => Run.NewFile(role, file), cancellationToken);

    /// <summary>
    /// Reverts to <paramref name="snapshot"/> (<see cref="RevertAsync"/>) and reads the instant markers back: the
    /// outcome says how it reverted or, when the backend said it cannot (a <see cref="RevertRefusedException"/>), why, with the markers
    /// to compare with <paramref name="atSnapshot"/> (those read just before the snapshot).
    /// </summary>
    public async Task<RevertOutcome> RevertToInstantAsync(SnapshotTaken snapshot, InstantMarkers atSnapshot, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        RevertDone? how = null;
        string? refusal = null;
        try
        {
            how = await RevertAsync(snapshot, cancellationToken).ConfigureAwait(false);
        }
        catch (RevertRefusedException e)
        {
            // Only the backend's "cannot": a revert that failed otherwise (a lost connection, a timeout) fails the cell.
            refusal = e.Message;
        }
        var after = await InstantMarkers.ReadAsync(Agent, cancellationToken).ConfigureAwait(false);
        return new RevertOutcome(new RevertEvidence(snapshot.Kind, atSnapshot, after), how, refusal);
    }

    /// <summary><c>qemu-img check</c> of each image: whether all are clean, and one summary line for a finding.</summary>
    public async Task<(bool Clean, string Summary)> CheckImagesAsync(IEnumerable<string> images, CancellationToken cancellationToken = default)
    {
        var results = new List<(string File, CheckResult Check)>();
        foreach (var image in images)
        {
            results.Add((image, await QemuImg.CheckAsync(image, cancellationToken: cancellationToken).ConfigureAwait(false)));
        }
        return (results.All(r => r.Check.IsClean), string.Join("; ", results.Select(r => $"{Path.GetFileName(r.File)}: {r.Check.Summary}")));
    }

    /// <summary>
    /// Ends the experiment: stops the guest (a lab-made one is removed; your domain is put back on its own disk,
    /// with a finding on whether its image was written), removes the lab's files unless kept, and returns what to
    /// show: the clean-up line and the journal of every command the lab issued.
    /// </summary>
    public async Task<ExperimentEnd> FinishAsync(CancellationToken cancellationToken = default)
    {
        if (_finished)
        {
            throw new LabUsageException("this experiment has already finished: run the notebook from its first cell again");
        }
        _finished = true;
        try
        {
            await Guest.DisposeAsync().ConfigureAwait(false);
            var added = new Findings();
            if (Guest.HandBack is { } handBack)
            {
                // Your domain: the evidence that the lab wrote only its own overlays, never any image of any of your disks.
                Findings.Check(handBack.Claim, handBack.ImagesUnchanged, handBack.Evidence);
                added.Check(handBack.Claim, handBack.ImagesUnchanged, handBack.Evidence);
            }
            var cleanup = await Run.CleanUpAsync(cancellationToken).ConfigureAwait(false);
            return new ExperimentEnd(cleanup, Guest.HandBack?.Summary, added, Journal.Entries.ToList());
        }
        finally
        {
            if (_ownedHost is not null)
            {
                await _ownedHost.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>For a notebook that stops early: the same as <see cref="FinishAsync"/>, once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_finished)
        {
            await FinishAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// What <see cref="Experiment.FinishAsync"/> shows: the clean-up, for your domain the hand-back and its finding
/// (<see cref="Findings"/>, also written as the findings MIME type so reports count it), and the journal.
/// </summary>
public sealed record ExperimentEnd(string CleanUp, string? HandBack, Findings Findings, IReadOnlyList<JournalEntry> Journal)
{
    public string ToHtml() =>
        $"<p>{WebUtility.HtmlEncode(CleanUp)}.</p>"
        + (HandBack is null ? "" : $"<p>{WebUtility.HtmlEncode(HandBack)}</p>{Findings.ToTable("Hand-back").ToHtml()}")
        + Journal.ToHtml();

    public string ToText() => $"{CleanUp}." + (HandBack is null ? "" : $"\n{HandBack}\n{Findings.ToTable("Hand-back").ToText()}") + $"\n{Journal.Count} journal entries";

    public override string ToString() => ToText();
}

/// <summary>A piece of HTML for a notebook, made from text the lab encodes (no HtmlEncode in notebooks).</summary>
[TypeFormatterSource(typeof(LabFormatterSource), PreferredMimeTypes = [MimeTypes.Html, MimeTypes.PlainText])]
public sealed record HtmlView(string Html, string Text)
{
    /// <summary>A paragraph of plain text.</summary>
    public static HtmlView Paragraph(string text) => new($"<p>{WebUtility.HtmlEncode(text)}</p>", text);

    /// <summary>A bold heading line and text shown as it is (a monitor's reply), in a <c>pre</c> block.</summary>
    public static HtmlView Preformatted(string title, string text) =>
        new($"<p><b>{WebUtility.HtmlEncode(title)}</b></p><pre>{WebUtility.HtmlEncode(text)}</pre>", $"{title}\n{text}");

    /// <summary>A bold heading line and an object's HTML below it (a chain, a table).</summary>
    public static HtmlView Titled(string title, string html, string text) => new($"<p><b>{WebUtility.HtmlEncode(title)}</b></p>{html}", $"{title}\n{text}");

    public override string ToString() => Text;
}

/// <summary>The files of a copy (<see cref="Experiment.OpenCopyAsync"/>) and how they were reached.</summary>
/// <param name="Files">The copy's files.</param>
/// <param name="How">"booted as a second guest" or "read offline", for a finding's text.</param>
/// <param name="Owner">What to dispose: the booted copy or the offline reader.</param>
public sealed record CopyView(IFileView Files, string How, IAsyncDisposable Owner) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Owner.DisposeAsync();
}

/// <summary>How the guest is quiesced around an operation (<see cref="Experiment.QuiescedAsync{T}(QuiesceMode, Func{Task{T}}, CancellationToken)"/>).</summary>
public enum QuiesceMode
{
    /// <summary>Not at all, as the documents do: the operation sees what has reached the disk.</summary>
    None,

    /// <summary>The guest's <c>sync</c> first: its page cache written out, writes go on meanwhile.</summary>
    Sync,

    /// <summary>The guest's filesystems frozen through the agent for the operation, thawed after (also when it fails).</summary>
    FsFreeze,
}
