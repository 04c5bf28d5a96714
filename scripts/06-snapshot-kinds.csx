// 06-snapshot-kinds.csx: generated from notebooks/src/06-snapshot-kinds.dib by tools/make-notebooks; edit the source, not this file.
// Run: scripts/lab run scripts/06-snapshot-kinds.csx -- NAME=VALUE ...   (parameters as in the notebook)

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
// before the snapshot tells whether the guest came back to that instant. Last, with a writer running, a
// crash-consistent snapshot is compared with a frozen one by reading both filesystems offline.
//
// Under TCG (2 cores) the whole notebook takes a few minutes.

#r "nuget: LabNotebooks, 0.1.0"
#load "lib/notebook-display.csx"
// The usings LabNotebooks' kernel extension gives the notebook:
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

// parameters (NAME=VALUE arguments override them)
long WriterLines = ScriptArgs.Get<long>(Args, "WriterLines", 2_000_000);
string Backend = ScriptArgs.Get<string>(Args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(Args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(Args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(Args, "LibvirtUri", "qemu:///system");
bool KeepArtifacts = ScriptArgs.Get<bool>(Args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(Args, "OutputDir", "");

var lab = await Lab.StartAsync("06-snapshot-kinds", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri,
    KeepArtifacts = KeepArtifacts, OutputDir = OutputDir,
});
display(lab.Describe());

// ## Each kind: taken, then reverted
//
// For each kind: write `/root/marker` with the kind's name and `sync`; take the snapshot; overwrite the marker; revert;
// read the marker back.

SnapshotKind[] kinds = [SnapshotKind.Internal, SnapshotKind.DiskOnly, SnapshotKind.DiskOnlyFrozen, SnapshotKind.WithMemory, SnapshotKind.WithMemoryLive];
var taken = new List<SnapshotTaken>();
var reverts = new List<(SnapshotKind Kind, string How, string Marker, string Error)>();
foreach (var kind in kinds.Where(lab.Supports))
{
    await lab.ShAsync($"echo {kind} > /root/marker && sync");
    var snapshot = await lab.SnapshotAsync(kind, $"s-{kind.ToString().ToLowerInvariant()}");
    taken.Add(snapshot);
    await lab.ShAsync("echo after-the-snapshot > /root/marker && sync");
    var (how, error) = ("", "");
    try { how = await lab.RevertAsync(snapshot); }
    catch (LabException e) { (how, error) = ("refused", e.Message); }
    reverts.Add((kind, how, (await lab.ShAsync("cat /root/marker")).Trim(), error));
}
display(Table.From(taken.Select(t => new
{
    kind = t.Kind.ToString(), durationMs = Math.Round(t.Duration.TotalMilliseconds), longestUnansweredMs = Math.Round(t.LongestUnanswered.TotalMilliseconds),
    addedMiB = Math.Round(t.GrowthBytes / 1048576.0, 1), how = t.How,
}), "Snapshots taken"));

display(Table.From(reverts.Select(r => new { kind = r.Kind.ToString(), how = r.How, markerAfterRevert = r.Marker, error = r.Error }), "Reverts"));
var names = taken.Select(t => t.Kind.ToString()).ToList();
display(Figures.Columns("Snapshot duration and the longest time the guest did not answer", "milliseconds", names,
    [("duration of the call", taken.Select(t => t.Duration.TotalMilliseconds).ToList()),
     ("longest unanswered guest-ping", taken.Select(t => t.LongestUnanswered.TotalMilliseconds).ToList())]));
display(Figures.Columns("What each snapshot added on the host", "MiB", names, [("added", taken.Select(t => t.GrowthBytes / 1048576.0).ToList())]));

// ## Crash-consistent against frozen, with a writer running
//
// The guest writes 1..`WriterLines` to `num.txt`. A quarter of the way in, a disk-only snapshot is taken as it comes
// (crash-consistent), and right after it a second one with the filesystems frozen. After the writer ends and the guest
// powers off, each frozen layer's filesystem is read offline from a scratch copy: whether it needed journal recovery,
// `e2fsck -fn` after the replay, and how much of `num.txt` it holds.

var writer = await SequenceWriter.StartAsync(lab.Agent, new SequenceWriterOptions { Count = WriterLines });
await writer.WaitForLinesAsync(WriterLines / 4, TimeSpan.FromMinutes(30));
var crash = await lab.SnapshotAsync(SnapshotKind.DiskOnly, "s-crash");
var frozen = await lab.SnapshotAsync(SnapshotKind.DiskOnlyFrozen, "s-frozen");
var finished = await writer.WaitAsync(TimeSpan.FromHours(1));
await lab.Guest.StopAsync();
var layers = new List<(string Name, bool NeededRecovery, bool FsckClean, string Fsck, SequenceCheck Lines)>();
foreach (var s in new[] { crash, frozen })
{
    await using var reader = await lab.ReadOfflineAsync(s.FrozenLayer!);
    var (clean, fsck) = await reader.CheckFilesystemAsync();
    var lines = SequenceChecker.Check(await reader.ExistsAsync("/root/num.txt") ? await reader.ReadFileAsync("/root/num.txt") : [], WriterLines);
    layers.Add((s.Name, reader.NeededJournalRecovery, clean, fsck, lines));
}
display(Table.From(layers.Select(l => new { snapshot = l.Name, neededJournalRecovery = l.NeededRecovery, fsck = l.Fsck, linesHeld = l.Lines.ValidPrefix, consistent = l.Lines.ConsistentPrefix }), "The two layers read offline"));

// ## Findings

SnapshotTaken Of(SnapshotKind k) => taken.FirstOrDefault(t => t.Kind == k);
var disk = Of(SnapshotKind.DiskOnly);
var internalSnap = Of(SnapshotKind.Internal);
var memory = Of(SnapshotKind.WithMemory);
// Each pause is judged against its own call's duration or against the other kinds measured the same way, so a busy
// host (which delays every agent answer) does not decide the verdict.
lab.Findings.Check("An internal snapshot pauses the guest for most of the time it takes (1)", internalSnap.LongestUnanswered >= internalSnap.Duration * 0.5,
    $"longest unanswered {internalSnap.LongestUnanswered.TotalMilliseconds:0} ms of a {internalSnap.Duration.TotalMilliseconds:0} ms snapshot; disk-only: {disk.LongestUnanswered.TotalMilliseconds:0} ms");
lab.Findings.Check("An internal snapshot grows the active qcow2 image itself (memory inside it)", internalSnap.GrowthBytes > 0 && internalSnap.NewFiles.Count == 0,
    $"+{internalSnap.GrowthBytes / 1048576.0:0.0} MiB in the active image, no new file");
lab.Findings.Check("An external disk-only snapshot barely pauses the guest (2)", disk.LongestUnanswered < TimeSpan.FromSeconds(1) || disk.LongestUnanswered * 4 < internalSnap.LongestUnanswered,
    $"longest unanswered {disk.LongestUnanswered.TotalMilliseconds:0} ms (internal: {internalSnap.LongestUnanswered.TotalMilliseconds:0} ms); the call took {disk.Duration.TotalMilliseconds:0} ms");
lab.Findings.Check("A snapshot with memory pauses the guest while memory is saved (3)", memory.LongestUnanswered >= memory.Duration * 0.5 && memory.LongestUnanswered > disk.LongestUnanswered,
    $"longest unanswered {memory.LongestUnanswered.TotalMilliseconds:0} ms of a {memory.Duration.TotalMilliseconds:0} ms snapshot; disk-only {disk.LongestUnanswered.TotalMilliseconds:0} ms; memory file {memory.GrowthBytes / 1048576.0:0} MiB");
if (Of(SnapshotKind.WithMemoryLive) is { } live)
    lab.Findings.Note("With --live the guest keeps running while memory is saved, but still stops for the final part (3)",
        $"longest unanswered {live.LongestUnanswered.TotalMilliseconds:0} ms vs {memory.LongestUnanswered.TotalMilliseconds:0} ms without --live; the call took {live.Duration.TotalMilliseconds:0} vs {memory.Duration.TotalMilliseconds:0} ms");
foreach (var r in reverts)
{
    var back = r.Marker == r.Kind.ToString();
    var refusedByLibvirt = r.How == "refused" && r.Kind is SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive && lab.Guest.Backend == "libvirt";
    lab.Findings.Check($"Reverting the {r.Kind} snapshot returns the guest to the snapshot's instant", back,
        r.How == "refused" ? $"refused: {r.Error}" : $"{r.How}: marker '{r.Marker}'", refutationExpected: refusedByLibvirt);
}
if (lab.Guest.Backend == "libvirt")
{
    var refused = reverts.Where(r => r.How == "refused").ToList();
    lab.Findings.Check("libvirt cannot revert to an external snapshot (4)", refused.Count > 0 && refused.All(r => r.Kind is SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive),
        refused.Count > 0 ? refused[0].Error : "every revert was accepted");
}
var (crashLayer, frozenLayer) = (layers[0], layers[1]);
lab.Findings.Check("The writer ran to the end through both snapshots", finished.Succeeded, $"exit {finished.ExitCode}");
lab.Findings.Check("The crash-consistent snapshot's filesystem needed journal recovery, as after a power cut (2)", crashLayer.NeededRecovery, $"needs_recovery: {crashLayer.NeededRecovery}");
lab.Findings.Check("The frozen snapshot's filesystem needed no recovery", !frozenLayer.NeededRecovery, $"needs_recovery: {frozenLayer.NeededRecovery}");
lab.Findings.Check("Both filesystems check clean once the journal is replayed", crashLayer.FsckClean && frozenLayer.FsckClean, $"{crashLayer.Fsck}; {frozenLayer.Fsck}");
lab.Findings.Note("Lines of num.txt held: crash-consistent vs frozen (taken a moment later)", $"{crashLayer.Lines.ValidPrefix:N0} vs {frozenLayer.Lines.ValidPrefix:N0} of {WriterLines:N0}: the freeze flushed the page cache first");
var (clean, summary) = await lab.CheckImagesAsync(taken.Concat([crash, frozen]).SelectMany(t => t.NewFiles).Where(f => f.EndsWith(".qcow2")));
lab.Findings.Check("qemu-img check accepts every overlay the snapshots made", clean, summary);
display(lab.Findings);

// ## Clean-up and the journal

display(await lab.FinishAsync());
