// 03-drive-mirror.csx: generated from notebooks/src/03-drive-mirror.dib by tools/make-notebooks; edit the source, not this file.
// Run: scripts/lab run scripts/03-drive-mirror.csx -- NAME=VALUE ...   (parameters as in the notebook)

// # 03 · drive_mirror: copies, outages, commit, pivots, shallow mirrors (001, all experiments)
//
// **What the document claims** (`001_e76e9be8cf0e6fec.txt`, six experiments over the HMP monitor):
//
// 1. *Mirror while the guest works*: `drive_mirror -f` copies a running VM's disk; files and directories created,
//    deleted and written (touch, mkdir, rmdir, dd) during the mirror are all in the copy after `block_job_cancel`
//    once the mirror is as big as the original.
// 2. *Storage outage*: with the mirror target on NFS and the NFS server stopped mid-job, `info block-jobs` shows the
//    job standing still; when the server is back, the job moves again and the copy holds every change.
// 3. *Commit while stopped*: after `stop`, HMP `commit` writes the data the VM produced into the backing file
//    (`base.img` grows).
// 4. *`block_job_complete` switches the VM's disk*: after it, a `dd` of 512 MB in the guest grows the mirror, not
//    the original, whether or not the VM was paused for the switch.
// 5. *Two rounds*: a second `drive_mirror` + `block_job_complete` copies the switched image (the new copy is as big
//    as the first) and switches again; only the newest image grows.
// 6. *The original can be moved away* after `block_job_complete`, while the VM runs.
// 7. *`drive_mirror -n`* onto an existing overlay that shares the backing file copies only what the VM wrote on
//    top of it: as little data as possible, as fast as possible.
//
// Here each step is QMP (`drive-mirror`, `blockdev-mirror`, `job-complete`, `block-job-cancel`, `block-commit`) driven by
// job events, except where the document's HMP command *is* the point (`commit`, `stop`, `c`, `info block-jobs`).
// "As big as the original" becomes the job's READY event. The copies are read **offline** (a scratch raw copy, its
// ext4 journal replayed there, files read with `debugfs`), so no copy is modified by looking at it. The NFS server
// becomes a `qemu-storage-daemon` serving the target over NBD on a unix socket, stopped and restarted mid-job.
// One guest serves all seven parts.
//
// **Scale**: `FileOps` file operations per workload (default 60: mkdir/touch/rm/rmdir and `dd` of up to 512 KiB),
// `WriteMiB` MiB written by each `dd` after a pivot (default 64; the document wrote 512 and 1024), mirrors that must
// overlap a workload or an outage limited to `MirrorSpeedMiB` MiB/s (default 64), an outage of `OutageSeconds`
// (default 6). Every full mirror copies the guest's whole disk (650 MiB and more). With the defaults the whole run
// took **129 s** under TCG here (2 cores) with `Backend=qemu` and 121 s with `Backend=libvirt`, three copies booted
// and a reboot included; the test scale `-p FileOps 20 -p WriteMiB 16 -p OutageSeconds 4` about 90 s: the full
// mirrors, the boots and the outage dominate, not the workload.

#r "nuget: LabKernel, 0.1.0"
#r "nuget: LabNotebooks, 0.1.0"
#load "lib/notebook-display.csx"
// The usings LabNotebooks' kernel extension gives the notebook:
using LabKernel.Host;
using LabKernel.Io;
// The C# kernel imports only System, System.Collections(.Generic), System.Linq, System.Text and System.Threading.Tasks.
using System.Globalization;
using System.IO;
using System.Net.Http;
using System.Threading;
using System.Text.Json.Nodes;
using LabKernel;
using LabKernel.Backends;
using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Integrity;
using LabKernel.Jobs;
using LabKernel.Journal;
using LabKernel.Libvirt;
using LabNotebooks;
using Plotly.NET.CSharp;
using SequenceWriter = LabKernel.Integrity.SequenceWriter;

// parameters (NAME=VALUE arguments override them)
int FileOps = ScriptArgs.Get<int>(Args, "FileOps", 60);
int WriteMiB = ScriptArgs.Get<int>(Args, "WriteMiB", 64);
int MirrorSpeedMiB = ScriptArgs.Get<int>(Args, "MirrorSpeedMiB", 64);
int OutageSeconds = ScriptArgs.Get<int>(Args, "OutageSeconds", 6);
int SampleMs = ScriptArgs.Get<int>(Args, "SampleMs", 250);
bool BootCopies = ScriptArgs.Get<bool>(Args, "BootCopies", true);
string Backend = ScriptArgs.Get<string>(Args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(Args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(Args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(Args, "LibvirtUri", "qemu:///system");
bool KeepArtifacts = ScriptArgs.Get<bool>(Args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(Args, "OutputDir", "");

// ## The VM and its chain
//
// As in the document's experiment 3: the VM's disk `disk.qcow2` has a backing file `vm-base.qcow2` (the document's
// `base/base.img`), itself an empty overlay on the lab's cached Debian image (which is never written). With your own
// libvirt domain, both are overlays the lab puts on top of your disk, which is then only read.
//
// Every step goes to QEMU's monitor: on `Backend=qemu` the machine's own QMP socket, on `Backend=libvirt` libvirt's
// monitor passthrough (`virDomainQemuMonitorCommand`, what `virsh qemu-monitor-command` calls, as in the document),
// with QEMU's events passed back by libvirt, so jobs are followed the same way on both.

var (backend, domain) = LabGuests.CheckChoice(Backend, Domain);
if (FileOps < 1 || WriteMiB < 1 || MirrorSpeedMiB < 1 || OutageSeconds < 1 || SampleMs < 50)
    throw new LabUsageException("FileOps, WriteMiB, MirrorSpeedMiB and OutageSeconds must be positive, SampleMs at least 50");
var journal = LabJournal.Current;
journal.Clear();
var started = DateTimeOffset.UtcNow;
var run = ExperimentRun.Create("03-drive-mirror", KeepArtifacts, OutputDir);
var vmBase = run.NewFile("backing", "vm-base.qcow2");
var disk = run.NewFile("disk", "disk.qcow2");
var guest = await LabGuests.StartAsync(new LabGuestOptions
{
    Backend = backend, Domain = domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri,
    Name = "nb03", WorkFolder = run.Folder, Overlays = [vmBase, disk],
});
run.UseExisting("base", guest.BaseImage);
var agent = guest.Agent;
var block = await guest.OpenMonitorAsync();
var qmp = block.Qmp;
var vda = guest.Disk;
// A copy can be booted with the lab's kernel when it is the lab's own guest; a user's disk is read offline.
var canBootCopies = BootCopies && (guest is QemuLabGuest || guest is LibvirtLabGuest { IsUserDomain: false });
var speed = MirrorSpeedMiB * 1048576L;
var jobLimit = TimeSpan.FromMinutes(15);

const double MiB = 1048576.0;
Task<string> Hmp(string command) => qmp.HumanMonitorCommandAsync(command);
async Task<long> AllocatedAsync(string file) => (await QemuImg.InfoAsync(file)).ActualSize ?? 0;
// Data the image itself holds (not its backing files), from qemu-img map.
async Task<long> OwnDataAsync(string file) => (await QemuImg.MapAsync(file)).BytesAllocatedInActive;
record SizeRow(string Step, string Image, double FileMiB, double AllocatedMiB);
var sizes = new List<SizeRow>();
async Task<SizeRow> MeasureAsync(string step, string file)
{
    var row = new SizeRow(step, Path.GetFileName(file), Math.Round(new FileInfo(file).Length / MiB, 1), Math.Round(await AllocatedAsync(file) / MiB, 1));
    sizes.Add(row);
    return row;
}
// The document's write: dd from the VM's own disk into a file, then sync.
Task GuestDdAsync(string path, int mib) => agent.ShellAsync(
    $"dd if=/dev/vda of={path} bs=1M count={mib} conv=fsync status=none && sync",
    new GuestExecOptions { Check = true, Timeout = TimeSpan.FromMinutes(20) });
async Task<FileOpsVerification> VerifyOfflineAsync(string layer, params FileOpsWorkload[] workloads)
{
    await using var reader = await OfflineLayerReader.OpenAsync(layer, run.Folder);
    var all = new List<FileOpFinding>();
    foreach (var w in workloads)
        all.AddRange((await w.VerifyAsync(reader)).Findings);
    return new FileOpsVerification(all);
}
// The document's check: boot a VM from the copy and look. The copy boots through a throwaway overlay, so it is
// never written; its SHA-256 before and after proves it.
async Task<(FileOpsVerification Result, string How)> VerifyCopyAsync(string copy, params FileOpsWorkload[] workloads)
{
    if (!canBootCopies)
        return (await VerifyOfflineAsync(copy, workloads), "read offline");
    var booted = await BootedCopy.StartAsync(copy, run.Folder, "nb03-copy");
    var all = new List<FileOpFinding>();
    try
    {
        foreach (var w in workloads)
            all.AddRange((await w.VerifyAsync(booted.Files)).Findings);
    }
    finally { await booted.DisposeAsync(); }
    return (new FileOpsVerification(all), $"booted from the copy in {booted.BootToAgent?.TotalSeconds:0.0} s; copy {(booted.CopyUnchanged == true ? "unchanged (SHA-256)" : "CHANGED")}");
}

var chainBefore = await block.QueryChainAsync(vda);
var df = (await agent.ShellAsync("df -m / | tail -1", new GuestExecOptions { Check = true })).StandardOutput.Trim();
display(HTML($"<p>Guest: {System.Net.WebUtility.HtmlEncode(guest.Description)}. Monitor: QEMU {qmp.QemuVersion}. Guest root filesystem (df -m): <code>{df}</code></p>"));
display(HTML("<p><b>Chain before</b></p>" + chainBefore.ToHtml()));
display(chainBefore.ToText());

// ## 1 · Mirror while the guest creates, deletes and writes files; cancel after READY
//
// `drive-mirror sync=full` to a new `mirror1.qcow2` (limited to `MirrorSpeedMiB` so the copy takes a while), and
// while it copies, the guest runs the file workload (mkdir, touch, dd, rm, rmdir; a manifest with the SHA-256 of
// every file it leaves). Then the speed limit is lifted, READY awaited, and the job cancelled: QEMU converges and
// leaves `mirror1.qcow2` a consistent copy, the VM staying on its disk.

var mirror1 = run.NewFile("mirror1", "mirror1.qcow2");
var job1 = await block.StartMirrorAsync(vda, new MirrorTarget.NewFile(mirror1), new MirrorOptions { Sync = MirrorSync.Full, Speed = speed });
var ops1 = await FileOpsWorkload.RunAsync(agent, "/root/ops1", FileOps, seed: 1);
var atOps1End = await job1.SampleAsync();
var infoJobs1 = await Hmp("info block-jobs");
await job1.SetSpeedAsync(0);
await job1.WaitReadyAsync(jobLimit);
await job1.CancelAsync();
var result1 = await job1.WaitAsync(jobLimit);
await job1.DisposeAsync();
var chainAfter1 = await block.QueryChainAsync(vda);
var (verify1, how1) = await VerifyCopyAsync(mirror1, ops1);
var check1 = await QemuImg.CheckAsync(mirror1);
run.Findings.Check("1. The file workload ran while the mirror was still copying (not READY yet)", atOps1End.Status != JobStatus.Ready,
    $"{ops1.Operations.Count} operations done at {atOps1End.Offset / MiB:0} of {atOps1End.Length / MiB:0} MiB, job {atOps1End.Status}");
run.Findings.Check("1. Cancel after READY keeps the VM on its disk", result1.Cancelled && chainAfter1.Active.Filename == disk, $"cancelled={result1.Cancelled}; active {chainAfter1.Active.Name}");
run.Findings.Check("1. Every created, deleted and written file and directory is in the copy as the manifest says", verify1.AllOk && !how1.Contains("CHANGED"), $"{verify1.Summary} ({how1})");
run.Findings.Check("1. The copy is a valid image (qemu-img check)", check1.IsClean, check1.Summary);
display(HTML($"<p>HMP <code>info block-jobs</code> when the workload ended:</p><pre>{System.Net.WebUtility.HtmlEncode(infoJobs1)}</pre>"));
display($"mirror1: {result1.Offset / MiB:0} MiB copied in {result1.Elapsed.TotalSeconds:0.0} s; {verify1.Summary}");

// ## 2 · Storage outage in the middle of a mirror
//
// The target `mirror2-nbd.qcow2` is served by a separate `qemu-storage-daemon` over NBD on a unix socket (the
// document's NFS server). The VM opens it as an `nbd` node with a `reconnect-delay` longer than the outage, and
// `blockdev-mirror` copies to it. When a quarter is copied the daemon is stopped (SIGTERM, like `service nfs stop`);
// during the outage the guest runs the file workload again and HMP `info block-jobs` is asked three times; after
// `OutageSeconds` (or when the workload is done, if later) the daemon is started again on the same socket; once the
// job moves again the speed limit is lifted. The job moves again only some seconds after the server is back: the
// NBD client retries its connection with growing pauses. The job's length is the whole virtual disk (8 GiB): QEMU cannot assume an NBD target reads as zeroes, so
// it writes the zeroes too (cheap `WRITE_ZEROES` requests). The job's offset is sampled every `SampleMs` ms
// (a measurement, not how the job is driven). At the end the VM is paused (HMP `stop`) and the copy compared with
// the VM's disk.

var mirror2 = run.NewFile("mirror2-nbd", "mirror2-nbd.qcow2");
var virtualSize = (await QemuImg.InfoAsync(disk)).VirtualSize;
await QemuImg.CreateAsync(mirror2, "qcow2", virtualSize);
var socketPath = Path.Combine(Path.GetTempPath(), $"nb03-{Guid.NewGuid().ToString("N")[..8]}.sock");
var export = await NbdExport.StartAsync(mirror2, socketPath, "mirror2");
await qmp.ExecuteAsync("blockdev-add", export.NodeOptions("nbd-target", TimeSpan.FromSeconds(OutageSeconds + 60)));
var job2 = await block.StartMirrorAsync(vda, new MirrorTarget.Node("nbd-target"), new MirrorOptions { Sync = MirrorSync.Full, Speed = speed });
var t0 = DateTimeOffset.UtcNow;
double Secs(DateTimeOffset at) => (at - t0).TotalSeconds;
var samples2 = new List<BlockJobProgress>();
var sampler = Task.Run(async () =>
{
    await foreach (var s in job2.SampleEveryAsync(TimeSpan.FromMilliseconds(SampleMs)))
        lock (samples2) samples2.Add(s);
});
BlockJobProgress Latest() { lock (samples2) return samples2.Count > 0 ? samples2[^1] : job2.Last; }
// Cut after a quarter of the job or 256 MiB, whichever comes first.
while ((Latest().Length == 0 || Latest().Offset < Math.Min(Latest().Length / 4, 256 * 1048576L)) && !job2.Completion.IsCompleted)
    await Task.Delay(SampleMs);
var cutAt = DateTimeOffset.UtcNow;
var offsetAtCut = Latest().Offset;
await export.StopAsync();
var hmpDuringOutage = new List<string>();
var ops2Task = Task.Run(async () => (Workload: await FileOpsWorkload.RunAsync(agent, "/root/ops2", FileOps, seed: 2), DoneAt: DateTimeOffset.UtcNow));
for (var i = 0; i < 3; i++)
{
    hmpDuringOutage.Add($"+{(DateTimeOffset.UtcNow - cutAt).TotalSeconds:0.0} s: " + (await Hmp("info block-jobs")).Trim());
    await Task.Delay(TimeSpan.FromSeconds(OutageSeconds / 3.0));
}
var remaining = cutAt + TimeSpan.FromSeconds(OutageSeconds) - DateTimeOffset.UtcNow;
if (remaining > TimeSpan.Zero)
    await Task.Delay(remaining);
// The storage stays away until the guest's workload is done too (at most two more minutes): if guest I/O hung on
// the dead target, the workload would not finish while the server is down.
var workloadEndedInOutage = await Task.WhenAny(ops2Task, Task.Delay(TimeSpan.FromMinutes(2))) == ops2Task;
await export.StartAsync();
var backAt = DateTimeOffset.UtcNow;
var offsetAtRestart = Latest().Offset;
var (ops2, ops2DoneAt) = await ops2Task;
// Let the job be seen moving again at the limited rate, then lift the limit for the rest (mostly zeroes).
var moveLimit = DateTimeOffset.UtcNow.AddSeconds(60);
while (Latest().Offset <= offsetAtRestart && DateTimeOffset.UtcNow < moveLimit)
    await Task.Delay(SampleMs);
await Task.Delay(TimeSpan.FromSeconds(2));
var liftAt = DateTimeOffset.UtcNow;
await job2.SetSpeedAsync(0);
await job2.WaitReadyAsync(jobLimit);
var readyAt2 = DateTimeOffset.UtcNow;
await job2.CancelAsync();
var result2 = await job2.WaitAsync(jobLimit);
await sampler;
await job2.DisposeAsync();
await qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = "nbd-target" });
var stopReply = await Hmp("stop");
await export.DisposeAsync();
var compare2 = await QemuImg.CompareAsync(disk, mirror2);
var (verify2, how2) = await VerifyCopyAsync(mirror2, ops1, ops2);

List<BlockJobProgress> s2;
lock (samples2) s2 = samples2.ToList();
// The outage as the job saw it: samples taken while the server was down (after a short settling time).
var during = s2.Where(s => s.At >= cutAt.AddSeconds(0.5) && s.At <= backAt).ToList();
var flat = during.Count >= 2 && during.Max(s => s.Offset) == during.Min(s => s.Offset);
var resumedAt = s2.FirstOrDefault(s => s.At > backAt && s.Offset > (during.Count > 0 ? during[^1].Offset : offsetAtCut))?.At;
run.Findings.Check("2. While the storage is away the job stands still (offset flat)", flat,
    during.Count == 0 ? "no samples in the outage" : $"{during.Count} samples over {(backAt - cutAt).TotalSeconds:0.0} s, offset {during.Min(s => s.Offset) / MiB:0.0}..{during.Max(s => s.Offset) / MiB:0.0} MiB (cut at {offsetAtCut / MiB:0.0} MiB)");
run.Findings.Check("2. When the storage is back the job moves again and reaches READY", resumedAt is not null && result2.Cancelled,
    resumedAt is { } ra ? $"moving again {(ra - backAt).TotalSeconds:0.0} s after the restart; READY {(readyAt2 - backAt).TotalSeconds:0.0} s after it" : "never moved again");
run.Findings.Check("2. The job survived the outage without an error (NBD reconnect)", result2.Errors.Count == 0, $"{result2.Errors.Count} BLOCK_JOB_ERROR events");
run.Findings.Check("2. The guest keeps working during the outage (its file workload completes while the storage is down)", workloadEndedInOutage && ops2DoneAt < backAt,
    $"{ops2.Operations.Count} file operations, finished {(ops2DoneAt - cutAt).TotalSeconds:0.0} s after the cut; the server came back after {(backAt - cutAt).TotalSeconds:0.0} s");
run.Findings.Check("2. The copy equals the VM's disk (qemu-img compare, VM paused)", compare2.Identical, compare2.Message);
run.Findings.Check("2. Every file operation before and during the outage is in the copy", verify2.AllOk && !how2.Contains("CHANGED"), $"{verify2.Summary} ({how2})");
display(HTML("<p>HMP <code>info block-jobs</code> during the outage:</p><pre>" + System.Net.WebUtility.HtmlEncode(string.Join("\n", hmpDuringOutage)) + "</pre>"));
// Plotted until the limit is lifted: the rest of the 8 GiB (mostly zeroes) would flatten the outage to a line.
var plotted = s2.Where(s => s.At <= liftAt).ToList();
display(Chart.Line<double, double, string>(plotted.Select(s => Secs(s.At)), plotted.Select(s => s.Offset / MiB), ShowMarkers: true, Name: "offset")
    .WithAxisTitles("time since the mirror started (s)", "bytes copied, offset (MiB)")
    .Titled("Mirror to an NBD target whose server is stopped and restarted (until the speed limit is lifted)")
    .Shade(Secs(cutAt), Secs(backAt), "NBD server down"));

// ## 3 · Commit while the VM is stopped
//
// The VM is paused (HMP `stop`, above). Sizes as the document looked at them (`ll`: the file size) and what the
// host really allocated, plus the data each overlay holds itself (`qemu-img map`). Then the document's HMP `commit`.
// HMP names a disk by its drive name, and `-blockdev` disks (the lab's and libvirt's) have none, so the only HMP form
// left is `commit all`, which commits *every* disk with a backing file. The lab sends it only when each image it
// would write is one the lab made (the embedded guest); on your domain with other disks it is refused, nothing is
// sent, and the same commit is done for the lab's own layer alone by node: QMP `block-commit` of `disk.qcow2` into
// `vm-base.qcow2`, cancelled at READY so the VM stays on `disk.qcow2`. Either way QEMU copies the overlay's data into
// `vm-base.qcow2`, the chain staying as it was; the finding says which was done.
//
// Then the QMP way: the VM runs again and writes `WriteMiB` MiB, is paused, and `block-commit` of the active layer
// (an *active commit*) copies it down, goes READY and `job-complete` pivots the VM onto `vm-base.qcow2`; the old
// top's nodes are then deleted (`blockdev-del`), which closes `disk.qcow2`.

var diskData3 = await OwnDataAsync(disk);
var baseData3 = await OwnDataAsync(vmBase);
await MeasureAsync("3. stopped, before HMP commit", disk);
await MeasureAsync("3. stopped, before HMP commit", vmBase);
// HMP commit only where every image it writes is the lab's; otherwise the lab's layer alone, by node.
HmpCommitResult hmpCommit = null;
string hmpRefused = null;
try { hmpCommit = await block.HmpCommitAsync(vda); }
catch (LabKernel.Host.ForeignImageException e) { hmpRefused = e.Message; }
var nodeCommit = hmpCommit is null ? await block.CommitIntoBackingAsync(vda) : null;
var status3 = await Hmp("info status");
await MeasureAsync("3. after HMP commit", disk);
await MeasureAsync("3. after HMP commit", vmBase);
var diskData3After = await OwnDataAsync(disk);
var baseData3After = await OwnDataAsync(vmBase);
var chain3 = await block.QueryChainAsync(vda);
var verify3 = await VerifyOfflineAsync(vmBase, ops1, ops2);
if (hmpCommit is not null)
    run.Findings.Check("3. HMP commit works while the VM is stopped", status3.Contains("paused"),
        $"sent '{hmpCommit.Command}', which wrote {string.Join(", ", hmpCommit.Written.Select(Path.GetFileName))} (all made by the lab); {status3.Trim()}");
else
{
    run.Findings.Note("3. HMP commit not sent: it would write a disk the lab did not create", hmpRefused);
    run.Findings.Check("3. Commit of the lab's layer alone (QMP block-commit by node, cancelled at READY) works while the VM is stopped",
        status3.Contains("paused") && nodeCommit.Cancelled && nodeCommit.Errors.Count == 0 && nodeCommit.Offset == nodeCommit.Length,
        $"{nodeCommit.Offset / MiB:0.0} MiB committed from {Path.GetFileName(disk)} into {Path.GetFileName(vmBase)}; {status3.Trim()}");
}
// HMP commit also empties the overlay; a block-commit cancelled at READY leaves its data there (now in both).
run.Findings.Check("3. The overlay's data moved into its backing file (the document's base.img grows)",
    baseData3After >= baseData3 + diskData3 * 9 / 10 && (hmpCommit is null || diskData3After < diskData3 / 10),
    $"vm-base.qcow2 holds {baseData3 / MiB:0.0} -> {baseData3After / MiB:0.0} MiB; disk.qcow2 {diskData3 / MiB:0.0} -> {diskData3After / MiB:0.0} MiB"
    + (hmpCommit is null ? " (kept: the commit by node does not empty it)" : " (emptied by HMP commit)"));
run.Findings.Check("3. The backing file alone now holds every file the guest made", verify3.AllOk, verify3.Summary);
run.Findings.Note("3. HMP commit keeps the chain", chain3.ToText());

await Hmp("c");
await GuestDdAsync("/root/commit-qmp.img", WriteMiB);
await Hmp("stop");
var diskData3b = await OwnDataAsync(disk);
await MeasureAsync("3. stopped, before QMP block-commit", disk);
await MeasureAsync("3. stopped, before QMP block-commit", vmBase);
var baseData3b = await OwnDataAsync(vmBase);
var chainBefore3b = await block.QueryChainAsync(vda);
var commitJob = await block.StartCommitAsync(vda, top: null, @base: vmBase);
await commitJob.WaitReadyAsync(jobLimit);
await commitJob.CompleteAsync();
var commitResult = await commitJob.WaitAsync(jobLimit);
await commitJob.DisposeAsync();
// The old top was opened with -blockdev, so the monitor still owns it (and it still holds vm-base.qcow2 as its
// backing file, which makes vm-base no root node for a later drive-mirror): delete it, as libvirt does.
var releasedByCommit = await block.ReleaseNodesLeftBehindAsync(chainBefore3b);
await MeasureAsync("3. after QMP block-commit", disk);
await MeasureAsync("3. after QMP block-commit", vmBase);
var baseData3c = await OwnDataAsync(vmBase);
var chain3b = await block.QueryChainAsync(vda);
await Hmp("c");
run.Findings.Check("3. QMP block-commit (active, while stopped) moves the overlay's data down and pivots onto the backing file",
    commitResult.Completed && chain3b.Active.Filename == vmBase && baseData3c >= baseData3b + (long)(WriteMiB * MiB * 0.9) && releasedByCommit.Count > 0,
    $"{commitResult.Offset / MiB:0.0} MiB committed; vm-base.qcow2 holds {baseData3b / MiB:0.0} -> {baseData3c / MiB:0.0} MiB; chain {chain3b.ToText()}; old top's nodes closed: {string.Join(", ", releasedByCommit)}");
display(sizes.Where(r => r.Step.StartsWith("3.")).ToTable("Sizes around the commits (MiB)"));
display(HTML("<p><b>Chain after the QMP commit</b></p>" + chain3b.ToHtml()));
display(hmpCommit is not null ? $"HMP {hmpCommit.Command}" : $"by node: {hmpRefused}");

// ## 4 · `job-complete` pivots the VM onto the mirror
//
// As the document's experiment 3: mirror to a new `mirror-a.qcow2`, at READY pause the VM (`stop`), complete,
// continue (`c`). `info block-jobs` is then empty and `info block` names the mirror. The guest writes `WriteMiB`
// MiB with `dd`: the mirror grows, the original (`vm-base.qcow2`) does not.

var mirrorA = run.NewFile("mirror-a", "mirror-a.qcow2");
var chainBefore4 = await block.QueryChainAsync(vda);
var job4 = await block.StartMirrorAsync(vda, new MirrorTarget.NewFile(mirrorA), new MirrorOptions { Sync = MirrorSync.Full });
await job4.WaitReadyAsync(jobLimit);
await Hmp("stop");
await job4.CompleteAsync();
var result4 = await job4.WaitAsync(jobLimit);
await job4.DisposeAsync();
// Nodes the monitor owns (libvirt opens every layer with -blockdev) stay open after a pivot until deleted.
var released = new List<string>(await block.ReleaseNodesLeftBehindAsync(chainBefore4));
await Hmp("c");
var jobsAfter4 = await Hmp("info block-jobs");
var infoBlock4 = await Hmp("info block");
var chain4 = await block.QueryChainAsync(vda);
var before4 = (Orig: await AllocatedAsync(vmBase), Mirror: await AllocatedAsync(mirrorA));
await MeasureAsync("4. after complete, before dd", vmBase);
await MeasureAsync("4. after complete, before dd", mirrorA);
await GuestDdAsync("/root/test.img", WriteMiB);
var after4 = (Orig: await AllocatedAsync(vmBase), Mirror: await AllocatedAsync(mirrorA));
await MeasureAsync("4. after dd", vmBase);
await MeasureAsync("4. after dd", mirrorA);
run.Findings.Check("4. After job-complete the VM's disk is the mirror (QEMU's view); no job is left", result4.Completed && chain4.Active.Filename == mirrorA && jobsAfter4.Contains("No active jobs"),
    $"active {chain4.Active.Name}; info block-jobs: {jobsAfter4.Trim()}");
run.Findings.Note("4. The document read `info block` as still naming the original; QEMU 7.2 names the mirror", infoBlock4.Split('\n').FirstOrDefault(l => l.Contains(".qcow2"))?.Trim() ?? infoBlock4.Trim());
run.Findings.Check($"4. A {WriteMiB} MiB dd in the guest grows the mirror, not the original", after4.Mirror - before4.Mirror >= (long)(WriteMiB * MiB * 0.9) && after4.Orig == before4.Orig,
    $"mirror-a +{(after4.Mirror - before4.Mirror) / MiB:0.0} MiB, vm-base.qcow2 +{(after4.Orig - before4.Orig) / MiB:0.0} MiB");
display(HTML("<p><b>Chain after the pivot</b></p>" + chain4.ToHtml() + $"<pre>{System.Net.WebUtility.HtmlEncode(infoBlock4)}</pre>"));
display(sizes.Where(r => r.Step.StartsWith("4.")).ToTable("Sizes around the pivot (MiB)"));
display($"pivoted in {result4.Elapsed.TotalSeconds:0.0} s after copying {result4.Offset / MiB:0} MiB");

// ## 5 · A second mirror + complete right after the first
//
// As the document's experiment 4: from the switched VM, `drive-mirror` to `mirror-b.qcow2` and complete, this time
// without pausing the VM. The new copy is as big as `mirror-a.qcow2` (it copied the switched image, `dd` data
// included); after another `dd` and, as in the document, a `reboot` inside the VM, only `mirror-b.qcow2` has grown.
// The reboot is the guest's own (through the agent); the lab waits for the agent to answer from the new boot.

var mirrorB = run.NewFile("mirror-b", "mirror-b.qcow2");
var chainBefore5 = await block.QueryChainAsync(vda);
var job5 = await block.StartMirrorAsync(vda, new MirrorTarget.NewFile(mirrorB), new MirrorOptions { Sync = MirrorSync.Full, OnReady = ReadyAction.Complete });
var result5 = await job5.WaitAsync(jobLimit);
await job5.DisposeAsync();
released.AddRange(await block.ReleaseNodesLeftBehindAsync(chainBefore5));
var chain5 = await block.QueryChainAsync(vda);
var sizeA5 = await AllocatedAsync(mirrorA);
var sizeB5 = await AllocatedAsync(mirrorB);
var orig5 = await AllocatedAsync(vmBase);
await MeasureAsync("5. after 2nd complete, before dd", vmBase);
await MeasureAsync("5. after 2nd complete, before dd", mirrorA);
await MeasureAsync("5. after 2nd complete, before dd", mirrorB);
await GuestDdAsync("/root/test_0000.img", WriteMiB);
// The document then reboots inside the VM before looking at the sizes.
var sumBeforeReboot = await agent.Sha256Async("/root/test_0000.img");
var rebootTook = await guest.RebootAsync(TimeSpan.FromMinutes(5));
var sumAfterReboot = await agent.Sha256Async("/root/test_0000.img");
var chain5Reboot = await block.QueryChainAsync(vda);
var grownA = await AllocatedAsync(mirrorA) - sizeA5;
var grownB = await AllocatedAsync(mirrorB) - sizeB5;
var grownOrig = await AllocatedAsync(vmBase) - orig5;
await MeasureAsync("5. after dd", vmBase);
await MeasureAsync("5. after dd", mirrorA);
await MeasureAsync("5. after dd", mirrorB);
run.Findings.Check("5. The second mirror copies the switched image: as big as the first mirror (within 5%)", Math.Abs(sizeB5 - sizeA5) <= sizeA5 / 20 && result5.Completed,
    $"mirror-b {sizeB5 / MiB:0.0} MiB vs mirror-a {sizeA5 / MiB:0.0} MiB; active {chain5.Active.Name}");
run.Findings.Check("5. After a reboot inside the VM it still runs on the newest image, with the dd file intact",
    chain5Reboot.Active.Filename == mirrorB && sumAfterReboot == sumBeforeReboot,
    $"back in {rebootTook.TotalSeconds:0.0} s; active {chain5Reboot.Active.Name}; test_0000.img SHA-256 {(sumAfterReboot == sumBeforeReboot ? "unchanged" : "changed")}");
run.Findings.Check("5. After the second complete only the newest image grows", grownB >= (long)(WriteMiB * MiB * 0.9) && grownA == 0 && grownOrig == 0,
    $"mirror-b +{grownB / MiB:0.0}, mirror-a +{grownA / MiB:0.0}, vm-base +{grownOrig / MiB:0.0} MiB");
display(sizes.Where(r => r.Step.StartsWith("5.")).ToTable("Sizes around the second round (MiB)"));
display(chain5.ToText());

// ## 6 · Move the original image away while the VM runs
//
// After the pivots QEMU no longer holds the original image: none of its open files (`/proc/PID/fd`) is one the VM
// left. A libvirt domain opens every layer as a node of its own (`-blockdev`); a pivot done through the monitor, behind
// libvirt's back, leaves those nodes open until they are deleted, so the lab deletes them after each pivot (and says
// which). The original `vm-base.qcow2` and the first mirror move to another folder; the guest
// keeps writing (a `dd` and a `sha256sum` of what it wrote) and the moved images are still valid.

string[] OpenImages() => guest.QemuProcessId is not { } pid ? [] : Directory.GetFiles($"/proc/{pid}/fd")
    .Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } })
    .Where(t => t is not null && t.EndsWith(".qcow2")).Select(t => t!).Distinct().ToArray();
var openBefore6 = OpenImages();
var left = new[] { vmBase, disk, mirrorA };
// disk.qcow2 stays: it is an overlay of vm-base.qcow2 and would lose its backing file.
var stillOpen = left.Where(f => openBefore6.Contains(f)).ToList();
var movedDir = Path.Combine(run.Folder, "moved");
Directory.CreateDirectory(movedDir);
var moved = new List<string>();
foreach (var (file, role) in new[] { (vmBase, "backing-moved"), (mirrorA, "mirror-a-moved") })
{
    var target = run.NewFile(role, Path.Combine("moved", Path.GetFileName(file)));
    File.Move(file, target);
    moved.Add(target);
}
var ddAfterMove = await agent.ShellAsync($"dd if=/dev/urandom of=/root/after-move.bin bs=1M count={Math.Min(WriteMiB, 16)} conv=fsync status=none && sync && sha256sum /root/after-move.bin && cat /proc/loadavg",
    new GuestExecOptions { Timeout = TimeSpan.FromMinutes(10) });
var chain6 = await block.QueryChainAsync(vda);
var movedChecks = new List<CheckResult>();
foreach (var m in moved)
    movedChecks.Add(await QemuImg.CheckAsync(m));
run.Findings.Note("6. Monitor-owned nodes of the images the VM left, closed after the pivots (blockdev-del, as libvirt does after its own pivots)",
    released.Count == 0 ? "none: QEMU freed the old layers itself" : string.Join(", ", released));
run.Findings.Check("6. After the pivots QEMU holds none of the images the VM left", stillOpen.Count == 0,
    $"open images: {string.Join(", ", openBefore6.Select(Path.GetFileName))}");
run.Findings.Check("6. With the original moved away the VM keeps running and writing", ddAfterMove.ExitCode == 0 && chain6.Active.Filename == mirrorB,
    $"dd + sync exit {ddAfterMove.ExitCode}, sha256sum: {ddAfterMove.StandardOutput.Split('\n')[0].Split(' ')[0]}; active {chain6.Active.Name}");
run.Findings.Check("6. The moved images are intact (qemu-img check)", movedChecks.All(c => c.IsClean), string.Join("; ", movedChecks.Select(c => c.Summary).Distinct()));
display($"moved {string.Join(", ", moved.Select(Path.GetFileName))} to {movedDir}");

// ## 7 · Shallow mirror (`-n`, `sync=top`) vs full mirror
//
// As the document's experiment 6: the VM's disk becomes an overlay `vm-top.qcow2` on a shared backing file
// (`mirror-b.qcow2` now plays the document's `base.img`; a live snapshot puts the overlay there), and the guest
// writes `WriteMiB` MiB into it. The target `mirror-shallow.qcow2` is made beforehand with
// `qemu-img create -b mirror-b.qcow2`, and the mirror reuses it (`mode=existing`, the document's `-n`) copying
// only the top (`sync=top`) while the guest runs the file workload. For comparison a full mirror of the same disk
// goes to a new file. Both are cancelled at READY with the VM paused, so both copies show the same disk.

var top7 = run.NewFile("overlay", "vm-top.qcow2");
var chain7 = await block.SnapshotAsync(vda, top7);
await GuestDdAsync("/root/test7.img", WriteMiB);
var shallow = run.NewFile("mirror-shallow", "mirror-shallow.qcow2");
await QemuImg.CreateAsync(shallow, "qcow2", options: new CreateOptions { BackingFile = mirrorB, BackingFormat = "qcow2" });
var job7s = await block.StartMirrorAsync(vda, new MirrorTarget.ExistingFile(shallow), new MirrorOptions { Sync = MirrorSync.Top, Speed = speed });
var ops7 = await FileOpsWorkload.RunAsync(agent, "/root/ops7", FileOps, seed: 7);
var atOps7End = await job7s.SampleAsync();
await job7s.SetSpeedAsync(0);
await job7s.WaitReadyAsync(jobLimit);
await Hmp("stop");
await job7s.CancelAsync();
var result7s = await job7s.WaitAsync(jobLimit);
await job7s.DisposeAsync();
var full7 = run.NewFile("mirror-full", "mirror-full.qcow2");
var job7f = await block.StartMirrorAsync(vda, new MirrorTarget.NewFile(full7), new MirrorOptions { Sync = MirrorSync.Full, OnReady = ReadyAction.Cancel });
var result7f = await job7f.WaitAsync(jobLimit);
await job7f.DisposeAsync();
var compare7 = await QemuImg.CompareAsync(shallow, full7);
var compare7Top = await QemuImg.CompareAsync(shallow, top7);
await Hmp("c");
var alloc7s = await AllocatedAsync(shallow);
var alloc7f = await AllocatedAsync(full7);
var (verify7, how7) = await VerifyCopyAsync(shallow, ops7);
run.Findings.Check("7. The shallow mirror copies only what the VM wrote on top of the shared backing file", result7s.Offset * 4 < result7f.Offset,
    $"sync=top copied {result7s.Offset / MiB:0.0} MiB in {result7s.Elapsed.TotalSeconds:0.0} s (speed-limited until the workload ended); sync=full {result7f.Offset / MiB:0.0} MiB in {result7f.Elapsed.TotalSeconds:0.0} s");
run.Findings.Check("7. The shallow copy (with its backing file) shows the same disk as the full copy and as the VM", compare7.Identical && compare7Top.Identical, $"vs full: {compare7.Message}; vs vm-top: {compare7Top.Message}");
run.Findings.Check("7. File operations done while the shallow mirror job ran are in the shallow copy", verify7.AllOk && !how7.Contains("CHANGED"),
    $"{verify7.Summary} ({how7}); the job was {atOps7End.Status} when they ended (a shallow mirror reaches READY quickly; from then on it copies each new write)");
run.Findings.Note("7. Allocated on the host: shallow vs full", $"{alloc7s / MiB:0.0} MiB vs {alloc7f / MiB:0.0} MiB");
var modes = new[] { "shallow (-n, sync=top)", "full (sync=full)" };
display(Chart.Combine(
    [
        Chart.Column<double, string, string>(new[] { result7s.Offset / MiB, result7f.Offset / MiB }, Keys: modes, Name: "bytes copied by the job"),
        Chart.Column<double, string, string>(new[] { alloc7s / MiB, alloc7f / MiB }, Keys: modes, Name: "allocated size of the copy"),
    ])
    .WithAxisTitles("mirror", "size (MiB)")
    .Titled("Shallow vs full mirror of the same disk"));

// ## Findings

display(run.Findings);

// ## Chain after, clean-up and the journal
//
// The guest is shut down. The chain the VM ended on is shown in QEMU's view and in qemu-img's. Unless
// `KeepArtifacts`, every image the lab made is removed (the cached base never is); with it, the images stay in the
// output folder with `artifacts.json` naming each file's role. Below, every command the lab issued, in order.

var (liveEnd, headersEnd, agreementEnd) = await block.CheckChainAgreementAsync(vda);
await guest.DisposeAsync();
if (guest.HandBack is { } handBack)
{
    // Your domain: the evidence that the lab wrote only its own overlays, never your image.
    run.Findings.Check($"Your domain's image ({handBack.Disk}) was not written between take-over and hand-back", handBack.ImageUnchanged, handBack.Evidence);
    display(run.Findings.Tail(1));
    display(handBack.Summary);
}
display(HTML("<p><b>Chain after (QEMU's view)</b></p>" + liveEnd.ToHtml() + $"<p>qemu-img: <code>{System.Net.WebUtility.HtmlEncode(headersEnd.ToText())}</code>; agreement: {agreementEnd.Agrees}</p>"));
display(sizes.ToTable("Every size measured (MiB)"));
var cleanup = await run.CleanUpAsync();
if (!KeepArtifacts && Directory.Exists(movedDir) && !Directory.EnumerateFileSystemEntries(movedDir).Any())
{
    Directory.Delete(movedDir);
    if (!Directory.EnumerateFileSystemEntries(run.Folder).Any())
        Directory.Delete(run.Folder);
}
display(HTML($"<p>{cleanup}. Whole run: {(DateTimeOffset.UtcNow - started).TotalSeconds:0} s.</p>"));
display(HTML(journal.Entries.ToHtml()));
