// 02-snapshot-and-commit-integrity.csx: generated from notebooks/src/02-snapshot-and-commit-integrity.dib by tools/make-notebooks; edit the source, not this file.
// Run: scripts/lab run scripts/02-snapshot-and-commit-integrity.csx -- NAME=VALUE ...   (parameters as in the notebook)

// # 02 · Live snapshot, then block commit while the guest writes (000, case 2)
//
// **What the document claims** (`000_dd5fc575f1b82753.txt`, case 2): a guest on `base <- overlay1 <- overlay2` writes
// 1..4,000,000 to `num.txt`. A live snapshot moves it onto `overlay3`, and `virsh blockcommit` merges `overlay2` into
// `overlay1`, shortening the chain to `base <- overlay1 <- overlay3`, all while the script writes. Then:
//
// 1. the script runs to the end;
// 2. the guest's disk (`overlay3` on the shortened chain) holds all of 1..4,000,000;
// 3. `overlay2`'s view holds an interrupted, consistent prefix;
// 4. step 7 restores the starting environment: `overlay3` renamed to `overlay2`, the snapshot metadata dropped, the
//    VM back on `overlay2`.
//
// With `Backend=qemu` (the default) the snapshot is QMP `blockdev-snapshot-sync` and the commit QMP `block-commit`
// (top `overlay2`, base `overlay1`) driven by job events. With `Backend=libvirt` they are the calls `virsh` makes:
// `virDomainSnapshotCreateXML` (DISK_ONLY|ATOMIC) and `virDomainBlockCommit`, followed by libvirt's BLOCK_JOB events,
// on the embedded guest defined as a domain, or on your own domain (`-p Domain name`; see the README). The chain is checked in QEMU's live view and in the image headers (`qemu-img info
// --backing-chain`), every image with `qemu-img check`, and overlay2's view is read offline without modifying it.
//
// **Scale**: `Count` (default 4,000,000 lines), `SnapshotAfterLines` (default 1,000,000), or
// `SnapshotAfterSeconds` to take the snapshot that many seconds into the writer instead. Default run under TCG (2 cores):
// 45 s here with `Backend=qemu`, 44 s with `Backend=libvirt`.

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
var run = ExperimentRun.Create("02-snapshot-and-commit-integrity", KeepArtifacts, OutputDir);
var overlay1 = run.NewFile("overlay1", "overlay1.qcow2");
var overlay2 = run.NewFile("overlay2", "overlay2.qcow2");
var guest = await LabGuests.StartAsync(new LabGuestOptions
{
    Backend = backend, Domain = domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri,
    Name = "nb02", WorkFolder = run.Folder, Overlays = [overlay1, overlay2],
});
run.UseExisting("base", guest.BaseImage);
var block = guest.Block;
var chainBefore = await block.QueryChainAsync(guest.Disk);
display(HTML($"<p>Guest: {System.Net.WebUtility.HtmlEncode(guest.Description)}.</p>"));
display(HTML("<p><b>Chain before</b></p>" + chainBefore.ToHtml()));
display(chainBefore.ToText());

// ## Writer, snapshot onto overlay3, commit of overlay2 into overlay1

var overlay3 = run.NewFile("overlay3", "overlay3.qcow2");
var writer = await SequenceWriter.StartAsync(guest.Agent, new SequenceWriterOptions
{
    Count = Count,
    Kind = Writer == "shell" ? SequenceWriterKind.ShellLoop : SequenceWriterKind.Awk,
});
var linesAtSnapshot = SnapshotAfterSeconds > 0
    ? await writer.WaitForElapsedAsync(TimeSpan.FromSeconds(SnapshotAfterSeconds))
    : await writer.WaitForLinesAsync(SnapshotAfterLines, TimeSpan.FromMinutes(30));
var snapshotAt = writer.Elapsed;
if (Quiesce == "fsfreeze") await guest.Agent.FreezeAsync();
else if (Quiesce == "sync") await guest.Agent.ExecAsync(["sync"], new GuestExecOptions { Check = true });
LiveChain afterSnapshot;
try { afterSnapshot = await block.SnapshotAsync(guest.Disk, overlay3); }
finally { if (Quiesce == "fsfreeze") await guest.Agent.ThawAsync(); }
var snapshotDone = writer.Elapsed;
var commitStart = writer.Elapsed;
var afterCommit = await block.CommitAsync(guest.Disk, top: overlay2, @base: overlay1);
var commitDone = writer.Elapsed;
var linesAtCommitEnd = await writer.ReadProgressAsync();
display(HTML("<p><b>After the snapshot</b></p>" + afterSnapshot.ToHtml() + "<p><b>After the commit</b></p>" + afterCommit.ToHtml()));
display($"snapshot at {snapshotAt.TotalSeconds:0.00} s ({linesAtSnapshot:N0} lines), commit {commitStart.TotalSeconds:0.00}-{commitDone.TotalSeconds:0.00} s; writer at {linesAtCommitEnd:N0} when the commit ended");

var finished = await writer.WaitAsync(TimeSpan.FromHours(2));
var newTop = SequenceChecker.Check(await guest.Agent.ReadFileAsync("/root/num.txt"), Count);
run.Findings.Check("The writer runs to the end through the snapshot and the commit", finished.Succeeded, $"exit {finished.ExitCode} after {writer.Elapsed.TotalSeconds:0.0} s");
run.Findings.Check($"The guest's disk (overlay3 on the shortened chain) holds all of 1..{Count:N0}", newTop.Complete, newTop.Summary);
var (live, headers, agreement) = await block.CheckChainAgreementAsync(guest.Disk);
string[] expected = [overlay3, overlay1, .. chainBefore.Filenames.Skip(2)];
run.Findings.Check($"The live chain ({guest.Backend}'s view) is base <- overlay1 <- overlay3", live.Filenames.SequenceEqual(expected), live.ToText());
run.Findings.Check("The image headers (qemu-img) agree with the live chain", agreement.Agrees, agreement.Summary);
display(newTop.Summary);

// ## overlay2's view, checks, and the document's step 7
//
// The guest is shut down; `overlay2` (with its backing overlay1, which now also holds overlay2's data) is read
// offline. Then step 7: overlay2 is removed, overlay3 renamed to overlay2 (its header names overlay1 as backing, and
// nothing names overlay3), so the starting chain `base <- overlay1 <- overlay2` is back, with the writer's data.

await guest.StopAsync();
SequenceCheck oldView;
await using (var reader = await OfflineLayerReader.OpenAsync(overlay2, run.Folder))
{
    // Without quiescing, even the file's creation may not have reached the disk when the snapshot was taken.
    var onDisk = await reader.ExistsAsync("/root/num.txt");
    oldView = SequenceChecker.Check(onDisk ? await reader.ReadFileAsync("/root/num.txt") : [], Count);
    if (!onDisk) run.Findings.Note("num.txt in overlay2's view", "absent: the file's creation was still in the guest's page cache at the snapshot");
}
run.Findings.Check("overlay2's view holds an interrupted sequence 1..k, k < Count, consistent", oldView.ValidPrefix < Count && oldView.ConsistentPrefix, oldView.Summary);
run.Findings.Check("k > 0: lines written before the snapshot reached overlay2's view", oldView.ValidPrefix > 0,
    oldView.ValidPrefix > 0 ? $"k = {oldView.ValidPrefix:N0} (Quiesce={Quiesce})"
    : $"k = 0 with Quiesce={Quiesce}: the lines were still in the guest's page cache when the snapshot was taken");
var checks = new List<(string Name, CheckResult Result)>();
foreach (var f in new[] { overlay1, overlay2, overlay3 })
    checks.Add((Path.GetFileName(f), await QemuImg.CheckAsync(f)));
run.Findings.Check("qemu-img check accepts every overlay", checks.All(c => c.Result.IsClean), string.Join("; ", checks.Select(c => $"{c.Name}: {(c.Result.IsClean ? "clean" : c.Result.Summary)}")));
var sizes = new List<object>();
foreach (var f in new[] { overlay1, overlay2, overlay3 })
{
    var info = await QemuImg.InfoAsync(f);
    sizes.Add(new { Layer = Path.GetFileName(f), AllocatedMiB = Math.Round((info.ActualSize ?? 0) / 1048576.0, 1), Backing = Path.GetFileName(info.BackingFilename ?? "") });
}
display(sizes.ToTable("Layer sizes after the commit"));

// Step 7: restore the starting chain base <- overlay1 <- overlay2.
File.Delete(overlay2);
File.Move(overlay3, overlay2);
var restored = await QemuImg.GetBackingChainAsync(overlay2);
var restoredOk = restored.Compare(chainBefore.Filenames).Agrees;
run.Findings.Check("Step 7 restores base <- overlay1 <- overlay2", restoredOk, restored.ToText());
SequenceCheck restoredView;
await using (var reader = await OfflineLayerReader.OpenAsync(overlay2, run.Folder))
{
    restoredView = SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), Count);
}
run.Findings.Check("The restored overlay2 (former overlay3) holds the complete sequence", restoredView.Complete, restoredView.Summary);
display(restored.ToText());

var t = writer.Samples.Select(s => s.At.TotalSeconds).ToArray();
var lines = writer.Samples.Select(s => (double)s.Lines).ToArray();
display(Chart.Line<double, double, string>(t, lines, ShowMarkers: true, Name: "num.txt")
    .WithAxisTitles("time since the writer started (s)", "lines flushed")
    .Titled("Lines written by the guest, with the snapshot and the commit")
    .Shade(snapshotAt.TotalSeconds, Math.Max(snapshotDone.TotalSeconds, snapshotAt.TotalSeconds + 0.05), "snapshot")
    .Shade(commitStart.TotalSeconds, Math.Max(commitDone.TotalSeconds, commitStart.TotalSeconds + 0.05), "block-commit", "#7fb3d5"));

// ## Findings

display(run.Findings);

// ## Clean-up and the journal

await guest.DisposeAsync();
if (guest.HandBack is { } handBack)
{
    // Your domain: the evidence that the lab wrote only its own overlays, never your image.
    run.Findings.Check($"Your domain's image ({handBack.Disk}) was not written between take-over and hand-back", handBack.ImageUnchanged, handBack.Evidence);
    display(run.Findings.Tail(1));
    display(handBack.Summary);
}
var cleanup = await run.CleanUpAsync();
display(HTML($"<p>{cleanup}.</p>"));
display(HTML(journal.Entries.ToHtml()));
