// 06-snapshot-kinds.cs: generated from notebooks/src/06-snapshot-kinds.dib by tools/make-notebooks; edit the source, not this file.
// Run: dotnet run scripts/06-snapshot-kinds.cs -- NAME=VALUE ...   (parameters as in the notebook; root, as the notebook)
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

args = ConsoleRun.Start(args, "06 · Kinds of snapshot: what each costs the guest, and how each reverts (004)");

// # 06 · Kinds of snapshot: what each costs the guest, and how each reverts (004)
//
// **What the document says** (`004_17d46895488bf03c.txt`, a survey of QEMU/KVM snapshots through libvirt):
//
// 1. an internal snapshot (libvirt's default) keeps memory and disks inside the qcow2 image, and the guest is
//    *paused* while it is taken;
// 2. an external disk-only snapshot moves the disk onto a new overlay; on a running guest it is only
//    *crash-consistent*, unless the guest agent quiesces the filesystems;
// 3. an external snapshot with memory (a system checkpoint) pauses the guest while memory is saved; with `--live`
//    it keeps running, yet the author still saw a short pause;
// 4. reverting to an external snapshot is "not supported yet" in libvirt (`snapshot-revert` fails).
//
// **Here** each kind is taken on the running guest, the way its backend makes it (QMP on `Backend=qemu`, libvirt's
// snapshot API, what `virsh snapshot-create-as` calls, on `Backend=libvirt`): the call's duration, the longest time
// the guest agent did not answer meanwhile (pinged every 20 ms: the pause a client of the guest sees), and the bytes
// each snapshot added on the host. Then each is reverted the way the backend can, and a marker file written just
// before the snapshot tells whether the guest came back to that instant: one on the disk (synced), one in memory only
// (a tmpfs, gone after any boot) and the kernel's boot id, so a revert that only boots the old disk cannot pass for a
// memory revert. On `Backend=qemu` a snapshot with memory is reverted for real: its saved memory (a migration stream)
// is loaded into a new QEMU over a fresh overlay on the layer frozen with it. Last, with a writer running, a
// crash-consistent snapshot is compared with a frozen one by reading both filesystems offline, against the lines the
// guest had written before each.
//
// Under TCG (2 cores) the whole notebook takes a few minutes.

// parameters (NAME=VALUE arguments override them; another name is refused)
ScriptArgs.CheckNames(args, ["WriterLines", "MemoryInUseMiB", "Backend", "Domain", "DomainDisk", "LibvirtUri", "HostFolder", "KeepArtifacts", "OutputDir"]);
long WriterLines = ScriptArgs.Get<long>(args, "WriterLines", 2_000_000);
int MemoryInUseMiB = ScriptArgs.Get<int>(args, "MemoryInUseMiB", 512);
string Backend = ScriptArgs.Get<string>(args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(args, "LibvirtUri", "qemu:///system");
string HostFolder = ScriptArgs.Get<string>(args, "HostFolder", "");
bool KeepArtifacts = ScriptArgs.Get<bool>(args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(args, "OutputDir", "");

var lab = await Lab.StartAsync("06-snapshot-kinds", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri, HostFolder = HostFolder,
    KeepArtifacts = KeepArtifacts, OutputDir = OutputDir,
});
display(lab.Describe());

// ## Each kind: taken, then reverted
//
// For each kind: write the kind's name into the disk marker (synced) and the memory marker (tmpfs), and read the boot
// id; for a kind that saves memory, make the guest hold `MemoryInUseMiB` of random data in memory, as a working guest
// does (on this machine only: on another host the pauses are not judged) (an idle guest's free pages are zeros, which QEMU skips: its internal snapshot would pause it no longer than a
// loaded host's ping gaps, and claim (2) could not be judged); take the snapshot; overwrite both markers; revert; read all three back. A kind that keeps memory must bring all
// three back; a disk-only kind the disk marker.

SnapshotKind[] kinds = [SnapshotKind.Internal, SnapshotKind.DiskOnly, SnapshotKind.DiskOnlyFrozen, SnapshotKind.WithMemory, SnapshotKind.WithMemoryLive];
var taken = new List<SnapshotTaken>();
var reverts = new List<RevertOutcome>();
var heldMiB = new Dictionary<SnapshotKind, int>();
foreach (var kind in kinds.Where(lab.Supports))
{
    await InstantMarkers.WriteAsync(lab.Agent, kind.ToString());
    // Held only where the pauses are judged: over SSH they are notes (each ping a round trip), and the data would only slow the memory saves.
    heldMiB[kind] = kind.KeepsMemory() && lab.Host.IsLocal ? await MemoryInUse.HoldAsync(lab.Agent, MemoryInUseMiB) : 0;
    var atSnapshot = await InstantMarkers.ReadAsync(lab.Agent);
    var snapshot = await lab.SnapshotAsync(kind, $"s-{kind.ToString().ToLowerInvariant()}");
    taken.Add(snapshot);
    await InstantMarkers.WriteAsync(lab.Agent, "after-the-snapshot");
    reverts.Add(await lab.RevertToInstantAsync(snapshot, atSnapshot));  // how it reverted, or the backend's refusal
}
display(Table.From(taken.Select(t => new
{
    kind = t.Kind.ToString(), durationMs = Math.Round(t.Duration.TotalMilliseconds), longestUnansweredMs = Math.Round(t.LongestUnanswered.TotalMilliseconds),
    memoryInUseMiB = heldMiB[t.Kind], addedMiB = Math.Round(t.GrowthBytes / 1048576.0, 1), how = t.How,
}), "Snapshots taken"));

display(Table.From(reverts.Select(r => new { kind = r.Kind.ToString(), how = r.How?.Description ?? "refused", diskMarker = r.Evidence.AfterRevert.Disk, memoryMarker = r.Evidence.AfterRevert.Memory, sameBoot = r.Evidence.AfterRevert.BootId == r.Evidence.AtSnapshot.BootId, error = r.Refusal ?? "" }), "Reverts"));
var names = taken.Select(t => t.Kind.ToString()).ToList();
display(Figures.Columns("Snapshot duration and the longest time the guest did not answer", "milliseconds", names,
    [("duration of the call", taken.Select(t => t.Duration.TotalMilliseconds).ToList()),
     ("longest unanswered guest-ping", taken.Select(t => t.LongestUnanswered.TotalMilliseconds).ToList())]));
display(Figures.Columns("What each snapshot added on the host", "MiB", names, [("added", taken.Select(t => t.GrowthBytes / 1048576.0).ToList())]));

// ## Crash-consistent against frozen, with a writer running
//
// The guest writes 1..`WriterLines` to `num.txt`, recording after each flush the last line it handed to the kernel.
// A quarter of the way in, a disk-only snapshot is taken as it comes (crash-consistent), and right after it a second
// one with the filesystems frozen. After the writer ends and the guest powers off, each frozen layer's filesystem is
// read offline from a scratch copy: whether it needed journal recovery, `e2fsck -fn` after the replay, and how much of
// `num.txt` it holds against the lines the guest had written before that snapshot. A freeze flushes the page cache,
// so the frozen layer must hold every line written before it; the crash-consistent one holds what had reached the disk.

var writer = await SequenceWriter.StartAsync(lab.Agent, new SequenceWriterOptions { Count = WriterLines });
var linesBeforeCrash = await writer.WaitForLinesAsync(WriterLines / 4, TimeSpan.FromMinutes(30));
var crash = await lab.SnapshotAsync(SnapshotKind.DiskOnly, "s-crash");
var linesBeforeFrozen = await writer.ReadProgressAsync();
var frozen = await lab.SnapshotAsync(SnapshotKind.DiskOnlyFrozen, "s-frozen");
var linesAfterBoth = await writer.ReadProgressAsync();
var finished = await writer.WaitForExitAsync(TimeSpan.FromHours(1));
await lab.Guest.StopAsync();
var layers = new List<(string Name, bool NeededRecovery, bool FsckClean, string Fsck, SequenceCheck Lines)>();
foreach (var s in new[] { crash, frozen })
{
    await using var reader = await lab.ReadOfflineAsync(s.FrozenLayer!);
    var (fsckClean, fsck) = await reader.CheckFilesystemAsync();
    var lines = SequenceChecker.Check(await reader.ExistsAsync("/root/num.txt") ? await reader.ReadFileAsync("/root/num.txt") : [], WriterLines);
    layers.Add((s.Name, reader.NeededJournalRecovery, fsckClean, fsck, lines));
}
long[] writtenBefore = [linesBeforeCrash, linesBeforeFrozen];
display(Table.From(layers.Select((l, i) => new { snapshot = l.Name, linesWrittenBefore = writtenBefore[i], linesHeld = l.Lines.ValidPrefix, consistent = l.Lines.ConsistentPrefix, neededJournalRecovery = l.NeededRecovery, fsck = l.Fsck }), "The two layers read offline"));

// ## Findings

SnapshotTaken Of(SnapshotKind k) => taken.FirstOrDefault(t => t.Kind == k);
var disk = Of(SnapshotKind.DiskOnly);
var internalSnap = Of(SnapshotKind.Internal);
var memory = Of(SnapshotKind.WithMemory);
// Each pause is judged against its own call's duration or against the other kinds measured the same way, so a busy
// host (which delays every agent answer) does not decide the verdict.
lab.Findings.Check("An internal snapshot pauses the guest for most of the time it takes (1)", internalSnap.PausedForMostOfIt,
    $"longest unanswered {internalSnap.LongestUnanswered.TotalMilliseconds:0} ms of a {internalSnap.Duration.TotalMilliseconds:0} ms snapshot; disk-only: {disk.LongestUnanswered.TotalMilliseconds:0} ms");
lab.Findings.Check("An internal snapshot grows the active qcow2 image itself (memory inside it)", internalSnap.GrewTheActiveImageOnly,
    $"+{internalSnap.GrowthBytes / 1048576.0:0.0} MiB in the active image, {internalSnap.StateBytes / 1048576.0:0.0} MiB of VM state listed in it under {internalSnap.Name}; new files: {internalSnap.NewFiles.Count}");
// Judged against the internal snapshot's pause (the guest holding MemoryInUseMiB), where that is long enough for the
// pings to tell the kinds apart; shown as a note otherwise (the pings' own gaps on a loaded host, or SSH round trips
// to another host, are as long as a small guest's pause).
var pauses2 = $"longest unanswered {disk.LongestUnanswered.TotalMilliseconds:0} ms (internal, saving {internalSnap.StateBytes / 1048576.0:0} MiB of VM state: {internalSnap.LongestUnanswered.TotalMilliseconds:0} ms); the call took {disk.Duration.TotalMilliseconds:0} ms";
if (disk.SuspensionComparableWith(internalSnap))
    // libvirt: its own state of the domain, sampled through each call, says how long the guest's CPUs were stopped; the
    // pings through libvirtd are shown beside it (on a loaded host they went silent for hundreds of ms around a
    // disk-only snapshot libvirt never paused).
    lab.Findings.Check("An external disk-only snapshot barely pauses the guest (2)", disk.BarelySuspendedAgainst(internalSnap),
        $"suspended (libvirt's domain state) {disk.Suspended!.Value.TotalMilliseconds:0} ms during the disk-only snapshot, {internalSnap.Suspended!.Value.TotalMilliseconds:0} ms during the internal one; pings: {pauses2}");
else if (!lab.Host.IsLocal)
    lab.Findings.Note("An external disk-only snapshot barely pauses the guest (2)",
        $"not judged on a domain reached over SSH ({lab.Host.Name}): the pings that measure the pause go there and back; {pauses2}");
else if (disk.PauseComparableWith(internalSnap))
    lab.Findings.Check("An external disk-only snapshot barely pauses the guest (2)", disk.BarelyPausedAgainst(internalSnap), pauses2);
else
    lab.Findings.Note("An external disk-only snapshot barely pauses the guest (2)",
        $"not judged: {pauses2}; the internal snapshot itself paused the guest under {SnapshotTaken.BarelyAPause.TotalMilliseconds:0} ms, as short as the pings' own gaps on a loaded host, so these pings cannot tell barely pausing from pausing");
// On QEMU the lab's checkpoint sends `stop` itself before saving memory, so the pause is by construction there: a note.
// On libvirt, libvirt decides how to save memory, and the pause is measured against the disk-only kind (at least
// SnapshotTaken.LongerFactor times as long: the memory save happened with the guest paused).
// Over SSH (your domain on another host) each ping is a round trip to that host, as long as a small guest's pause:
// the measurement cannot tell them apart there, so it is shown, not judged.
if (lab.Can(LabCapabilities.LibvirtSnapshots) && lab.Host.IsLocal)
    lab.Findings.Check("A snapshot with memory pauses the guest while memory is saved (3)", memory.PausedLongerThan(disk),
        $"longest unanswered {memory.LongestUnanswered.TotalMilliseconds:0} ms of a {memory.Duration.TotalMilliseconds:0} ms snapshot; disk-only {disk.LongestUnanswered.TotalMilliseconds:0} ms; memory file {memory.GrowthBytes / 1048576.0:0} MiB");
else if (lab.Can(LabCapabilities.LibvirtSnapshots))
    lab.Findings.Note("A snapshot with memory pauses the guest while memory is saved (3)",
        $"not judged on a domain reached over SSH ({lab.Host.Name}): the pings that measure the pause go there and back, as long as the pause itself; longest unanswered {memory.LongestUnanswered.TotalMilliseconds:0} ms of a {memory.Duration.TotalMilliseconds:0} ms snapshot; disk-only {disk.LongestUnanswered.TotalMilliseconds:0} ms; memory file {memory.GrowthBytes / 1048576.0:0} MiB");
else
    lab.Findings.Note("A snapshot with memory pauses the guest while memory is saved (3)",
        $"on QEMU the lab's checkpoint pauses the guest itself (QMP stop, snapshot, migrate to a file, cont), so this is how it is made, not a measurement: longest unanswered {memory.LongestUnanswered.TotalMilliseconds:0} ms of a {memory.Duration.TotalMilliseconds:0} ms snapshot; memory file {memory.GrowthBytes / 1048576.0:0} MiB");
if (Of(SnapshotKind.WithMemoryLive) is { } live)
    lab.Findings.Note("With --live the guest keeps running while memory is saved, but still stops for the final part (3)",
        $"longest unanswered {live.LongestUnanswered.TotalMilliseconds:0} ms vs {memory.LongestUnanswered.TotalMilliseconds:0} ms without --live; the call took {live.Duration.TotalMilliseconds:0} vs {memory.Duration.TotalMilliseconds:0} ms");
foreach (var r in reverts)
{
    // libvirt before 9.9 refuses external reverts: the document's claim (4), declared expected.
    var refusedByLibvirt = r.Refused && r.Kind.SavesMemoryFile() && lab.Can(LabCapabilities.LibvirtSnapshots);
    lab.Findings.Check(r.Evidence.Claim, r.ReturnedToInstant, r.Observed, refutationExpected: refusedByLibvirt);
}
if (lab.Can(LabCapabilities.LibvirtSnapshots))
{
    var refused = reverts.Where(r => r.Refused).ToList();
    lab.Findings.Check("libvirt cannot revert to an external snapshot (4)", RevertOutcome.OnlyExternalRevertsRefused(reverts),
        refused.Count > 0 ? refused[0].Refusal! : "every revert was accepted");
}
var (crashLayer, frozenLayer) = (layers[0], layers[1]);
var overlap = new WriterOverlap("two snapshots", linesBeforeCrash, linesAfterBoth, WriterLines);
lab.Findings.Check(overlap.Claim, overlap.WritingThroughout, overlap.Summary);
lab.Findings.Check("The writer ran to the end through both snapshots", finished.RanToTheEnd, finished.Summary);
// ext4 sets needs_recovery on every filesystem it has mounted and clears it only when frozen (or unmounted): the flag
// says the crash-consistent layer was taken from a live filesystem, not that anything in it was damaged.
lab.Findings.Note("The crash-consistent snapshot's filesystem needed journal recovery, as after a power cut (2)",
    $"needs_recovery: {crashLayer.NeededRecovery} (set on every mounted ext4 that is not frozen; the lines below are the measurement)");
lab.Findings.Check("The frozen snapshot's filesystem needed no recovery (the freeze made it clean)", !frozenLayer.NeededRecovery, $"needs_recovery: {frozenLayer.NeededRecovery}");
lab.Findings.Check("The frozen snapshot holds every line the guest had written before the freeze, consistent", frozenLayer.Lines.HoldsAtLeast(linesBeforeFrozen),
    $"{frozenLayer.Lines.ValidPrefix:N0} lines held, {linesBeforeFrozen:N0} written before the freeze; {frozenLayer.Lines.Summary}");
lab.Findings.Check("The crash-consistent snapshot holds a consistent prefix after journal replay (no torn or foreign lines)", crashLayer.Lines.ConsistentPrefix, crashLayer.Lines.Summary);
lab.Findings.Note("Lines the crash-consistent snapshot lost: written by the guest before it, not yet on the disk",
    $"{Math.Max(0, linesBeforeCrash - crashLayer.Lines.ValidPrefix):N0} of {linesBeforeCrash:N0} (it holds {crashLayer.Lines.ValidPrefix:N0}); the frozen one, a moment later, lost {Math.Max(0, linesBeforeFrozen - frozenLayer.Lines.ValidPrefix):N0} of {linesBeforeFrozen:N0}");
lab.Findings.Check("Both filesystems check clean once the journal is replayed", crashLayer.FsckClean && frozenLayer.FsckClean, $"{crashLayer.Fsck}; {frozenLayer.Fsck}");
var (clean, summary) = await lab.CheckImagesAsync(taken.Concat([crash, frozen]).SelectMany(t => t.NewFiles).Where(f => f.EndsWith(".qcow2")));
lab.Findings.Check("qemu-img check accepts every overlay the snapshots made", clean, summary);
display(lab.Findings);

// ## Clean-up and the journal

display(await lab.FinishAsync());

return ConsoleRun.Exit();
