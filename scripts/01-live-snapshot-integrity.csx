// 01-live-snapshot-integrity.csx: generated from notebooks/src/01-live-snapshot-integrity.dib by tools/make-notebooks; edit the source, not this file.
// Run: scripts/lab run scripts/01-live-snapshot-integrity.csx -- NAME=VALUE ...   (parameters as in the notebook)

// # 01 · Live external snapshot while the guest writes (000, case 1)
//
// **What the document claims** (`000_dd5fc575f1b82753.txt`, case 1): a guest on the chain `base <- overlay1` runs
// a script that writes the numbers 1..4,000,000 to `num.txt`, one per line. A live external disk-only snapshot
// is taken while it writes, so the guest moves onto a new overlay `overlay2`. Then:
//
// 1. the script is not disturbed: it runs to the end;
// 2. the guest's disk (now `overlay2` on top of `overlay1`) holds all of 1..4,000,000;
// 3. `overlay1`, frozen at the snapshot instant, holds an interrupted sequence 1..k, k < 4,000,000 — a consistent
//    prefix (at most a torn last line).
//
// The document took the snapshot with `virsh snapshot-create-as --disk-only`, waited with `sleep`, and booted a
// second VM directly on `overlay1` to look at it (which writes to it). Here every wait is on a condition, and
// `overlay1` is read offline from a scratch copy, so the evidence is never modified. With `Backend=qemu` (the default)
// the snapshot is QMP `blockdev-snapshot-sync` in a `transaction`; with `Backend=libvirt` it is the call `virsh`
// makes, `virDomainSnapshotCreateXML` with DISK_ONLY|ATOMIC, on the embedded guest defined as a domain or on your own
// domain (`-p Domain name`: the lab first moves it onto its own `overlay1`, so your image is only read, and hands the
// domain back on its own disk at the end).
//
// **Going further**: the lines a writer has *flushed* (awk `fflush`) sit in the guest's page cache until ext4
// writes them back (up to 30 s later), so a snapshot taken without quiescing may hold none of them. `Quiesce`
// (`none` as the document, `sync`, or `fsfreeze` through the guest agent) shows the difference.
//
// **Scale**: `Count` (default 4,000,000 lines, as the document) and `SnapshotAfterLines` (default 1,000,000), or
// `SnapshotAfterSeconds` to take the snapshot that many seconds into the writer instead.
// With the awk writer under TCG (2 cores) the default run took 58 s here with `Backend=qemu` and 42 s with
// `Backend=libvirt` (the writer's speed varies from run to run); `-p Count 200000` about 15 s.

#r "nuget: LabKernel, 0.1.0"
#r "nuget: LabNotebooks, 0.1.0"
#load "lib/notebook-display.csx"
// The C# kernel imports only System, System.Collections(.Generic), System.Linq, System.Text and System.Threading.Tasks.
using System.Globalization;
using System.IO;
using System.Net.Http;
using System.Threading;
using LabKernel;
using LabKernel.Backends;
using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Integrity;
using LabKernel.Journal;
using LabKernel.Libvirt;
using LabNotebooks;
using Plotly.NET.CSharp;
using SequenceWriter = LabKernel.Integrity.SequenceWriter;

// parameters (NAME=VALUE arguments override them)
long Count = ScriptArgs.Get<long>(Args, "Count", 4_000_000);
long SnapshotAfterLines = ScriptArgs.Get<long>(Args, "SnapshotAfterLines", 1_000_000);
double SnapshotAfterSeconds = ScriptArgs.Get<double>(Args, "SnapshotAfterSeconds", 0);
string Writer = ScriptArgs.Get<string>(Args, "Writer", "awk");
string Quiesce = ScriptArgs.Get<string>(Args, "Quiesce", "none");
string Backend = ScriptArgs.Get<string>(Args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(Args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(Args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(Args, "LibvirtUri", "qemu:///system");
bool KeepArtifacts = ScriptArgs.Get<bool>(Args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(Args, "OutputDir", "");

var (backend, domain) = LabGuests.CheckChoice(Backend, Domain);
if (SnapshotAfterSeconds == 0 && SnapshotAfterLines >= Count)
    throw new LabUsageException("SnapshotAfterLines must be below Count");
if (SnapshotAfterSeconds < 0)
    throw new LabUsageException("SnapshotAfterSeconds must be 0 (use SnapshotAfterLines) or positive");
var journal = LabJournal.Current;
journal.Clear();
var run = ExperimentRun.Create("01-live-snapshot-integrity", KeepArtifacts, OutputDir);
var overlay1 = run.NewFile("overlay1", "overlay1.qcow2");
var guest = await LabGuests.StartAsync(new LabGuestOptions
{
    Backend = backend, Domain = domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri,
    Name = "nb01", WorkFolder = run.Folder, Overlays = [overlay1],
});
run.UseExisting("base", guest.BaseImage);
var block = guest.Block;
var chainBefore = await block.QueryChainAsync(guest.Disk);
display(HTML($"<p>Guest: {System.Net.WebUtility.HtmlEncode(guest.Description)}.</p>"));
display(HTML("<p><b>Chain before</b></p>" + chainBefore.ToHtml()));
display(chainBefore.ToText());

// ## The writer, and the snapshot in the middle of it
//
// The guest writes 1..Count (awk, flushing every 1,000 lines; `-p Writer shell` runs the document's bash loop
// instead). When the writer has flushed `SnapshotAfterLines` lines (or has run `SnapshotAfterSeconds`), the lab takes the
// live snapshot onto `overlay2`.

var overlay2 = run.NewFile("overlay2", "overlay2.qcow2");
var writer = await SequenceWriter.StartAsync(guest.Agent, new SequenceWriterOptions
{
    Count = Count,
    Kind = Writer == "shell" ? SequenceWriterKind.ShellLoop : SequenceWriterKind.Awk,
});
var linesAtSnapshot = SnapshotAfterSeconds > 0
    ? await writer.WaitForElapsedAsync(TimeSpan.FromSeconds(SnapshotAfterSeconds))
    : await writer.WaitForLinesAsync(SnapshotAfterLines, TimeSpan.FromMinutes(30));
var snapshotAt = writer.Elapsed;
LabKernel.Block.LiveChain chainAfterSnapshot;
// The guest's dirty page cache just before the snapshot (and before any quiescing, since a frozen agent reads no
// files): what a crash-consistent snapshot would miss.
var pageCache = await GuestPageCache.ReadAsync(guest.Agent);
if (Quiesce == "fsfreeze")
{
    await guest.Agent.FreezeAsync();
    try { chainAfterSnapshot = await block.SnapshotAsync(guest.Disk, overlay2); }
    finally { await guest.Agent.ThawAsync(); }
}
else
{
    if (Quiesce == "sync")
        await guest.Agent.ExecAsync(["sync"], new GuestExecOptions { Check = true });
    chainAfterSnapshot = await block.SnapshotAsync(guest.Disk, overlay2);
}
var snapshotDone = writer.Elapsed;
var linesAfterSnapshot = await writer.ReadProgressAsync();
display($"snapshot at {snapshotAt.TotalSeconds:0.00} s with {linesAtSnapshot:N0} lines flushed; took {(snapshotDone - snapshotAt).TotalMilliseconds:0} ms; writer at {linesAfterSnapshot:N0} right after");

var finished = await writer.WaitAsync(TimeSpan.FromHours(2));
var newTop = SequenceChecker.Check(await guest.Agent.ReadFileAsync("/root/num.txt"), Count);
run.Findings.Check("The writer is not disturbed by the live snapshot: it runs to the end", finished.Succeeded,
    $"exit {finished.ExitCode} after {writer.Elapsed.TotalSeconds:0.0} s");
run.Findings.Check($"The guest's disk (overlay2 on overlay1) holds all of 1..{Count:N0}", newTop.Complete, newTop.Summary);
display(HTML("<p><b>Chain after the snapshot (the hypervisor's live view)</b></p>" + chainAfterSnapshot.ToHtml()));
display(newTop.Summary);

// ## What overlay1 holds
//
// The guest is powered off cleanly; then `overlay1` (with its backing file) is read offline: `qemu-img convert -U`
// to a scratch raw file, the ext4 journal replayed on that copy, `num.txt` read with `debugfs`.

await guest.StopAsync();
var overlay1Hash = await LabKernel.Host.FileHash.Sha256Async(overlay1);
SequenceCheck oldLayer;
await using (var reader = await OfflineLayerReader.OpenAsync(overlay1, run.Folder))
{
    // Without quiescing, even the file's creation may not have reached the disk when the snapshot was taken.
    var onDisk = await reader.ExistsAsync("/root/num.txt");
    oldLayer = SequenceChecker.Check(onDisk ? await reader.ReadFileAsync("/root/num.txt") : [], Count);
    if (!onDisk) run.Findings.Note("num.txt in overlay1's view", "absent: the file's creation was still in the guest's page cache at the snapshot");
}
var overlay1Untouched = overlay1Hash == await LabKernel.Host.FileHash.Sha256Async(overlay1);
// Without quiescing, k = 0 is a known outcome (the next finding measures why), not a failure of the run.
run.Findings.Check("overlay1 holds an interrupted sequence 1..k with 0 < k < Count", oldLayer.ValidPrefix > 0 && oldLayer.ValidPrefix < Count && oldLayer.ConsistentPrefix,
    $"k = {oldLayer.ValidPrefix:N0} (Quiesce={Quiesce}): {oldLayer.Summary}", refutationExpected: Quiesce == "none" && oldLayer.ValidPrefix == 0 && oldLayer.ConsistentPrefix);
// Why a crash-consistent snapshot may hold nothing: measured, not assumed.
var flushedBytes = SequenceChecker.BytesOf(linesAtSnapshot);
var cacheText = $"Dirty {pageCache.DirtyKiB:N0} KiB + Writeback {pageCache.WritebackKiB:N0} KiB in the guest just before the snapshot request (before quiescing); the writer had flushed {flushedBytes / 1024.0:N0} KiB ({linesAtSnapshot:N0} lines) into the page cache";
if (oldLayer.ValidPrefix == 0)
    run.Findings.Check("k = 0 because the flushed lines were still in the guest's page cache at the snapshot (measured)",
        pageCache.NotOnDiskBytes >= flushedBytes * 9 / 10, cacheText + "; ext4 writes dirty data back after up to 30 s, Quiesce=sync or fsfreeze flushes it first");
else
    run.Findings.Note("The guest's page cache at the snapshot", cacheText);
run.Findings.Check("overlay1's prefix is consistent (only a torn last line or zero bytes may follow)", oldLayer.ConsistentPrefix, oldLayer.FirstBadLine is null ? "no damaged line" : $"bad line {oldLayer.FirstBadLine}");
run.Findings.Note("Lines in overlay1 vs flushed when the snapshot was requested / right after it", $"{oldLayer.ValidPrefix:N0} vs {linesAtSnapshot:N0} / {linesAfterSnapshot:N0}");
run.Findings.Check("Reading overlay1 did not modify it", overlay1Untouched, overlay1Untouched ? "SHA-256 unchanged" : "changed!");
var check1 = await QemuImg.CheckAsync(overlay1);
var check2 = await QemuImg.CheckAsync(overlay2);
run.Findings.Check("qemu-img check accepts overlay1 and overlay2", check1.IsClean && check2.IsClean, $"{check1.Summary}; {check2.Summary}");
var headers = await QemuImg.GetBackingChainAsync(overlay2);
run.Findings.Check("qemu-img sees base <- overlay1 <- overlay2", headers.Compare(chainAfterSnapshot.Filenames).Agrees, headers.ToText());
display(oldLayer.Summary);

var t = writer.Samples.Select(s => s.At.TotalSeconds).ToArray();
var lines = writer.Samples.Select(s => (double)s.Lines).ToArray();
display(Chart.Line<double, double, string>(t, lines, ShowMarkers: true, Name: "num.txt")
    .WithAxisTitles("time since the writer started (s)", "lines flushed")
    .Titled("Lines written by the guest, with the live snapshot")
    .Shade(snapshotAt.TotalSeconds, Math.Max(snapshotDone.TotalSeconds, snapshotAt.TotalSeconds + 0.05), "snapshot"));

// ## Findings

display(run.Findings);

// ## Clean-up and the journal
//
// The document's step 7: return to `base <- overlay1`. The guest is already off. A lab-made guest is removed; your
// own domain is put back on its own disk (and started again if it was running). `overlay2` (made by the lab) is
// removed unless `KeepArtifacts`, and `overlay1` stays a valid image whose backing file is the base. Below it, every
// command the lab issued, in order.

await guest.DisposeAsync();
if (guest.HandBack is { } handBack)
{
    // Your domain: the evidence that the lab wrote only its own overlays, never your image.
    run.Findings.Check($"Your domain's image ({handBack.Disk}) was not written between take-over and hand-back", handBack.ImageUnchanged, handBack.Evidence);
    display(run.Findings.Tail(1));
    display(handBack.Summary);
}
var restored = await QemuImg.GetBackingChainAsync(overlay1);
var cleanup = await run.CleanUpAsync();
display(HTML($"<p>{cleanup}. Chain now: <code>{System.Net.WebUtility.HtmlEncode(restored.ToText())}</code></p>"));
display(HTML(journal.Entries.ToHtml()));
