// 05-incremental-backup.cs: generated from notebooks/src/05-incremental-backup.dib by tools/make-notebooks; edit the source, not this file.
// Run: dotnet run scripts/05-incremental-backup.cs -- NAME=VALUE ...   (parameters as in the notebook; root, as the notebook)
// Exits as lab run: 0, 4 when a claim is refuted that the notebook does not declare expected, 2 for a bad
// parameter (one line), 1 when a step fails. Writes an HTML report, NAME.html in the current directory
// (--report=PATH to name it, --no-report for none).
#:package LabNotebooks@0.1.0
// The repository's Directory.Build.props applies (warnings are errors); its central package versions
// do not (the version is the one above); nullable annotations are off, as for the notebook's cells; and
// LabNotebooks is not built for native AOT.
#:property ManagePackageVersionsCentrally=false
#:property Nullable=disable
#:property PublishAot=false

// The usings LabNotebooks' kernel extension gives the notebook, and display() and HTML() as text:
using System.Globalization;
using System.IO;
using System.Threading;
using LabKernel;
using LabKernel.Backends;
using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Integrity;
using LabKernel.Io;
using LabKernel.Journal;
using LabNotebooks;
using Plotly.NET.CSharp;
using static LabNotebooks.ConsoleRun;

args = ConsoleRun.Start(args, "05 · Incremental backup: external snapshots then, dirty bitmaps now (003)");

// # 05 · Incremental backup: external snapshots then, dirty bitmaps now (003)
//
// **What the document does** (`003_ddf70415929837d1.txt`, 2015, QEMU 2.4): to back up an OpenStack guest
// incrementally it takes external disk-only snapshots (`virsh snapshot-create-as --disk-only --atomic`) with
// changes in the guest between them, then:
//
// 1. `virsh blockpull` into the top snapshot makes it a standalone image; a copy of it boots with every change;
// 2. a non-top snapshot merged into the image below it (`qemu-img commit`) boots with its changes;
// 3. its claim: the *top* snapshot of a running guest cannot be merged into its base (it ran `qemu-img commit` on the
//    running top, then booted `testcomm.img`, which is not the file it had committed into).
//
// **Here** the guest runs on `base <- overlay1` (the lab never writes the cached guest image, or your domain's own
// disk images, so `overlay1` plays the document's base image). Each change is a file of random bytes whose SHA-256 the guest prints; a layer
// "holds" a change when that file reads back with that hash from a booted copy or an offline read. The stream and
// the active commit are the lab's `block-stream`/`block-commit` (libvirt's blockpull/blockcommit on `Backend=libvirt`).
//
// **Then the way QEMU does it today**: a dirty bitmap on the disk, a full `blockdev-backup`, then increments with
// `blockdev-backup sync=bitmap` (the same as `sync=incremental`), each a new qcow2 whose backing file is the previous
// backup. Each backup is taken in one QMP `transaction` with an external snapshot, so the layer that snapshot freezes
// is the disk exactly at the backup point: `qemu-img compare` of the two says whether full + increments restore it.
//
// **Scale**: `ChangeMiB` per change file (read back through the guest agent), `Increments` backups of `IncrementMiB`
// of new data each. Two copies of layers are checked: booted as a second guest on the embedded guest
// (`BootCopies`), read offline on your own domain (`Domain`), whose disk has no kernel the lab boots, or with
// `BootCopies false`.

// parameters (NAME=VALUE arguments override them; another name is refused)
ScriptArgs.CheckNames(args, ["ChangeMiB", "Increments", "IncrementMiB", "Quiesce", "Backend", "Domain", "DomainDisk", "LibvirtUri", "HostFolder", "BootCopies", "KeepArtifacts", "OutputDir"]);
int ChangeMiB = ScriptArgs.Get<int>(args, "ChangeMiB", 1);
int Increments = ScriptArgs.Get<int>(args, "Increments", 3);
int IncrementMiB = ScriptArgs.Get<int>(args, "IncrementMiB", 16);
string Quiesce = ScriptArgs.Get<string>(args, "Quiesce", "sync");
string Backend = ScriptArgs.Get<string>(args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(args, "LibvirtUri", "qemu:///system");
string HostFolder = ScriptArgs.Get<string>(args, "HostFolder", "");
bool BootCopies = ScriptArgs.Get<bool>(args, "BootCopies", true);
bool KeepArtifacts = ScriptArgs.Get<bool>(args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(args, "OutputDir", "");

if (ChangeMiB < 1 || Increments < 1 || IncrementMiB < 1)
    throw new LabUsageException("ChangeMiB, Increments and IncrementMiB must be at least 1");
Experiment.CheckQuiesce(Quiesce);
var lab = await Lab.StartAsync("05-incremental-backup", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri, HostFolder = HostFolder,
    KeepArtifacts = KeepArtifacts, OutputDir = OutputDir,
});
var disk = lab.Disk;

// A change: a new file of random bytes, synced; its SHA-256 is what a layer must give back.
var changes = new Dictionary<string, string>();
async Task<string> ChangeAsync(string name)
{
    var path = $"/root/{name}.bin";
    changes[path] = (await lab.ShAsync($"head -c {ChangeMiB}M /dev/urandom > {path} && sync && sha256sum {path} | cut -d' ' -f1")).Trim();
    return path;
}
// Which of the changes a view of a layer lacks (absent or other bytes); "" when it holds them all.
async Task<string> LacksAsync(IFileView view, IEnumerable<string> paths) => string.Join(", ", await ExpectedFiles.LackingAsync(view, changes, paths));
var approaches = new List<(string Approach, long Bytes, TimeSpan Time)>();
display(lab.Describe());

// ## A chain of external snapshots with a change between each
//
// `change1` goes into `overlay1`; then snapshots `snap1`..`snap3`, each followed by the next change, so the chain is
// `base <- overlay1 (change1) <- snap1 (change2) <- snap2 (change3) <- snap3 (change4, active)`.

var overlay1 = lab.Run.PathOf("overlay1");
var layers = new List<string> { overlay1 };
var made = new List<string> { await ChangeAsync("change1") };
string overlay1AtSnapshot = "";
for (var k = 1; k <= 3; k++)
{
    var snap = lab.NewFile($"snap{k}");
    await lab.Block.SnapshotAsync(disk, snap);
    if (k == 1)
        overlay1AtSnapshot = await lab.Host.Sha256Async(overlay1); // the document's base, the moment it was snapshotted
    layers.Add(snap);
    made.Add(await ChangeAsync($"change{k + 1}"));
}
var top = layers[^1];
display(await lab.Block.QueryChainAsync(disk));

// ## The document's conclusions 1-4
//
// The document ends with seven conclusions; 5-7 are the pull, the commit and the refused merge below. Of the first
// four, two are about software this lab does not run (Nova, QEMU 1.5.1), and say so. The fourth is measured: after
// `snap1` was taken, three changes were written in the guest, so if `overlay1` (the document's base image) were still
// written, its bytes would differ now from the SHA-256 taken right after the snapshot; and a writer that opens it
// (`qemu-io`, read-write, no command) must be refused by QEMU's lock while the guest runs.

var qemuVersion = (await lab.MonitorAsync()).Qmp.QemuVersion;
lab.Findings.Note("1. Nova's own snapshots cannot back up incrementally to a remote site", "not measured: the lab runs no OpenStack");
lab.Findings.Note("2. QEMU 1.5.1 cannot take external snapshots", $"not measured: this host's QEMU is {qemuVersion.ToString(3)}");
lab.Findings.Note("3. QEMU from 2.4.1 takes external snapshots", $"QEMU {qemuVersion.ToString(3)} took snap1..snap3 live on the running guest (backend {lab.Guest.Backend.Name()})");
var overlay1Now = await lab.Host.Sha256Async(overlay1);
var writerRefused = await ImageLock.WriterRefusalAsync(overlay1, host: lab.Host);
lab.Findings.Check("4. After an external snapshot the base image is locked and no longer modified: changes go to the snapshots",
    overlay1Now == overlay1AtSnapshot && writerRefused is not null,
    $"overlay1's SHA-256 {(overlay1Now == overlay1AtSnapshot ? "unchanged" : "CHANGED")} across change2..change4 ({overlay1Now[..12]}...); " +
    (writerRefused is null ? "a writer opened it (no lock)" : $"a writer is refused: {writerRefused}"));

// ## blockpull: the top becomes a standalone image (document step 6)
//
// `block-stream` with no base copies everything below `snap3` into it and drops its backing file. A snapshot then
// freezes `snap3` so a copy of it can boot while the guest goes on (the document copied the running image).

var pulledBefore = (await lab.QemuImg.MapAsync(top)).BytesAllocatedInActive;
var clock = System.Diagnostics.Stopwatch.StartNew();
await lab.Block.StreamAsync(disk);
approaches.Add(("block-stream (pull) into the top", (await lab.QemuImg.MapAsync(top)).BytesAllocatedInActive - pulledBefore, clock.Elapsed));
var snap4 = lab.NewFile("snap4");
await lab.QuiescedAsync(Quiesce, () => lab.Block.SnapshotAsync(disk, snap4));
var pulled = await lab.QemuImg.InfoAsync(top);
lab.Findings.Check("After block-stream snap3 has no backing file: a standalone image", !pulled.HasBacking, pulled.BackingFilename ?? "no backing file");
await using (var copy = await lab.OpenCopyAsync(top, "pulled", BootCopies))
{
    var lacks = await LacksAsync(copy.Files, made);
    lab.Findings.Check("A copy of the pulled snap3 holds change1..change4", lacks.Length == 0, (lacks.Length == 0 ? "all 4 read back with their SHA-256" : $"lacks {lacks}") + $" ({copy.How})");
}

// ## qemu-img commit of a non-top layer into the one below (document step 7)
//
// The stream left `overlay1 <- snap1 <- snap2` out of the guest's chain, untouched. `qemu-img commit snap2` merges it
// into `snap1`; a copy of `snap1` must hold change1..change3 (change4 lives only in `snap3`, outside this chain).

var snap1 = layers[1];
var snap2 = layers[2];
var committedBytes = (await lab.QemuImg.MapAsync(snap2)).BytesAllocatedInActive;
clock.Restart();
await lab.QemuImg.CommitAsync(snap2);
approaches.Add(("qemu-img commit (non-top layer)", committedBytes, clock.Elapsed));
await using (var copy = await lab.OpenCopyAsync(snap1, "committed", BootCopies))
{
    var lacks = await LacksAsync(copy.Files, made.Take(3));
    var hasChange4 = await copy.Files.ExistsAsync(made[3]);
    lab.Findings.Check("A copy of snap1 after the commit holds change1..change3 (change3 came from snap2; change1 and change2 were there before)", lacks.Length == 0,
        (lacks.Length == 0 ? "change1..change3 read back with their SHA-256" : $"lacks {lacks}") + $" ({copy.How})");
    // change4 was written only into snap3, which is not in this chain at all: its absence tests nothing.
    lab.Findings.Note("change4 in the committed snap1", hasChange4 ? "present (unexpected: it was written only into snap3)" : "absent, as it must be: it was written only into snap3, outside this chain");
}

// ## The claim: the running top cannot be merged into its base
//
// `change5` goes into `snap4`, the running top. The document's way, `qemu-img commit` on the running top, is refused
// today: QEMU holds the image's lock (image locking came in QEMU 2.10; in 2015 the command ran against an image in
// use). The live way is an active `block-commit`: it copies the top into its base while the guest writes, then pivots
// the guest onto the base.

made.Add(await ChangeAsync("change5"));
string refusal = "";
try { await lab.QemuImg.CommitAsync(snap4); }
catch (ImageInUseException e) { refusal = e.Message; }
lab.Findings.Check("qemu-img commit of the running top is refused (QEMU holds its lock), so nothing is merged that way", refusal.Length > 0,
    refusal.Length > 0 ? refusal.Split(';')[0] : "qemu-img committed the running top!");
var activeBytes = (await lab.QemuImg.MapAsync(snap4)).BytesAllocatedInActive;
clock.Restart();
var merged = await lab.Block.CommitAsync(disk, snap4, top);
approaches.Add(("active block-commit of the top", activeBytes, clock.Elapsed));
lab.Findings.Check("An active commit merges the running top into its base: the guest runs on snap3 again", merged.IsExactly([top]), merged.ToText());
display(merged);

// ## The way QEMU does it today: dirty bitmap, full backup, increments
//
// `nb05` is a dirty bitmap on the disk's active layer. The full backup starts it in the same transaction, so it
// records exactly the writes after the backup point. Before each increment the guest writes `IncrementMiB` of new
// data; the increment copies only the clusters the bitmap marks and clears it. Each transaction also snapshots the
// disk onto `frozenN`, freezing the layer below at the backup point (and the bitmap moves onto the new overlay).

var options = new BackupOptions { Bitmap = "nb05" };
var backups = new List<BackupResult>
{
    await lab.QuiescedAsync(Quiesce, () => lab.Block.FullBackupAsync(disk, lab.NewFile("backup-full"), options with { SnapshotOverlay = lab.NewFile("frozen0") })),
};
var dirty = new List<long>();
for (var i = 1; i <= Increments; i++)
{
    await lab.ShAsync($"head -c {IncrementMiB}M /dev/urandom > /root/increment{i}.bin && sync");
    dirty.Add((await lab.Block.QueryBitmapsAsync(disk)).First(b => b.Name == "nb05").Count);
    var previous = backups[^1];
    backups.Add(await lab.QuiescedAsync(Quiesce, () => lab.Block.IncrementalBackupAsync(disk, lab.NewFile($"backup-inc{i}"), previous,
        options with { SnapshotOverlay = lab.NewFile($"frozen{i}") })));
}
approaches.Add(("full backup", backups[0].BytesCopied, backups[0].Duration));
for (var i = 1; i < backups.Count; i++)
    approaches.Add(($"incremental backup {i}", backups[i].BytesCopied, backups[i].Duration));

// snap3, the active commit's base, is frozen now (by the full backup's snapshot): it must hold change5.
await using (var reader = await lab.ReadOfflineAsync(top))
{
    var lacks = await LacksAsync(reader, made);
    lab.Findings.Check("After the active commit snap3 (the old base) holds change1..change5", lacks.Length == 0, lacks.Length == 0 ? "all 5 read back offline" : $"lacks {lacks}");
}

var rows = new List<object>();
var equal = new List<bool>();
foreach (var b in backups)
{
    var same = await lab.QemuImg.CompareAsync(b.FrozenLayer!, b.Target);
    equal.Add(same.Identical);
    rows.Add(new
    {
        backup = Path.GetFileName(b.Target), chain = string.Join(" <- ", b.Chain.Select(Path.GetFileName)), MiBcopied = Math.Round(b.BytesCopied / 1048576.0, 1),
        seconds = Math.Round(b.Duration.TotalSeconds, 2), frozenLayer = Path.GetFileName(b.FrozenLayer), equal = same.Identical ? "identical" : same.Message,
    });
}
display(Table.From(rows, "Backups: each chain compared with the layer frozen at its backup point"));

// ## Restore and findings
//
// Restoring the last point is one `qemu-img convert` of its chain (full + every increment) into a standalone image.

var restored = await Backups.RestoreAsync(backups[^1], lab.NewFile("restored"), host: lab.Host);
var restoredSame = await lab.QemuImg.CompareAsync(backups[^1].FrozenLayer!, restored);
lab.Findings.Check("Every backup chain (full + increments up to it) reads exactly as the disk did at its backup point", equal.All(e => e),
    $"{equal.Count(e => e)} of {equal.Count} chains identical to their frozen layer (qemu-img compare)");
lab.Findings.Check("The restored image (qemu-img convert of full + all increments) equals the disk at the last backup", restoredSame.Identical, restoredSame.Message);
var increments = backups.Skip(1).ToList();
// The full job's offset is the disk's whole virtual size, and its target allocates all of it (mostly as zero
// clusters), so the increments are measured against the data the full backup holds (qemu-img map: data, not zero).
var fullData = (await lab.QemuImg.MapAsync(backups[0].Target)).BytesOfDataAtDepth(0);
// What each increment's own image holds (depth 0 of qemu-img map), not the job's offset: an incremental job's length is
// the bitmap's count, so its offset matches "what was marked" by construction.
var incrementData = new List<long>();
foreach (var b in increments)
    incrementData.Add((await lab.QemuImg.MapAsync(b.Target)).BytesOfDataAtDepth(0));
lab.Findings.Check("Each increment holds the guest's new data and under a quarter of the data the full backup holds",
    incrementData.All(d => BackupResult.HoldsTheNewDataOnly(d, IncrementMiB * 1048576L, fullData)),
    string.Join("; ", increments.Select((b, i) => $"inc{i + 1}: {incrementData[i] / 1048576.0:0.0} MiB of data in its image ({b.BytesCopied / 1048576.0:0.0} MiB copied, {dirty[i] / 1048576.0:0.0} MiB dirty before), {IncrementMiB} MiB written"))
        + $"; full: {fullData / 1048576.0:0.0} MiB of data in its target (job offset {backups[0].BytesCopied / 1048576.0:0} MiB)");
var (clean, summary) = await lab.CheckImagesAsync([.. backups.Select(b => b.Target), restored, top, snap1]);
lab.Findings.Check("qemu-img check accepts every backup, the restored image and the committed layers", clean, summary);
display(Figures.Columns("Bytes copied per approach", "MiB", approaches.Select(a => a.Approach).ToList(),
    [("MiB copied", approaches.Select(a => a.Bytes / 1048576.0).ToList())]));
display(Figures.Columns("Time per approach", "seconds", approaches.Select(a => a.Approach).ToList(),
    [("seconds", approaches.Select(a => a.Time.TotalSeconds).ToList())]));
display(lab.Findings);

// ## Clean-up and the journal
//
// The guest stops and is removed; the run's images (snapshots, backups, frozen layers, the restored image) are removed
// unless `KeepArtifacts`. Below, every command the lab issued, in order.

display(await lab.FinishAsync());

return ConsoleRun.Exit();
