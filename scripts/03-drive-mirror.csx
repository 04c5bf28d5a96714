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
// job events, one call of the lab per step of the document (start the mirror, wait for READY, complete or cancel), except
// where the document's HMP command *is* the point (`commit`, `stop`, `c`, `info block-jobs`). The storage outage of part 2
// is a step per call too (start the mirror onto the NBD server, wait for a quarter, stop the server, let the guest work,
// look at the job, start the server, watch it move, READY, cancel), and so is part 3's QMP commit (`block-commit` of the
// active layer, READY, `job-complete`, close the old top).
// "As big as the original" becomes the job's READY event. The copies are read **offline** (a scratch raw copy, its
// ext4 journal replayed there, files read with `debugfs`), so no copy is modified by looking at it. The NFS server
// becomes a `qemu-storage-daemon` serving the target over NBD on a unix socket, stopped and restarted mid-job.
// One guest serves all seven parts.
//
// **Scale**: `FileOps` file operations per workload (default 60: mkdir/touch/rm/rmdir and `dd` of up to 512 KiB),
// `WriteMiB` MiB written by each `dd` after a pivot (default 64; the document wrote 512 and 1024), mirrors that must
// overlap a workload or an outage limited to `MirrorSpeedMiB` MiB/s (default 64), an outage of `OutageSeconds`
// (default 6). Every full mirror copies the guest's whole disk (about 350 MiB of the embedded guest's, more of yours). With the defaults the whole run
// took **129 s** under TCG here (2 cores) with `Backend=qemu` and 121 s with `Backend=libvirt`, three copies booted
// and a reboot included; the test scale `-p FileOps 20 -p WriteMiB 16 -p OutageSeconds 4` about 90 s: the full
// mirrors, the boots and the outage dominate, not the workload.

#r "nuget: LabNotebooks, 0.1.0"
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
// display() and HTML() as text:
using static LabNotebooks.ConsoleRun;

// parameters (NAME=VALUE arguments override them; another name is refused)
ScriptArgs.CheckNames(Args, ["FileOps", "WriteMiB", "MirrorSpeedMiB", "OutageSeconds", "SampleMs", "BootCopies", "Backend", "Domain", "DomainDisk", "LibvirtUri", "HostFolder", "KeepArtifacts", "OutputDir"]);
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
string HostFolder = ScriptArgs.Get<string>(Args, "HostFolder", "");
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

if (FileOps < 1 || WriteMiB < 1 || MirrorSpeedMiB < 1 || OutageSeconds < 1 || SampleMs < 50)
    throw new LabUsageException("FileOps, WriteMiB, MirrorSpeedMiB and OutageSeconds must be positive, SampleMs at least 50");
var lab = await Lab.StartAsync("03-drive-mirror", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri, HostFolder = HostFolder, KeepArtifacts = KeepArtifacts, OutputDir = OutputDir,
    Overlays = ["vm-base", "disk"],
});
var (vmBase, disk) = (lab.Run.PathOf("vm-base"), lab.Run.PathOf("disk"));
var block = await lab.MonitorAsync();
var speed = MirrorSpeedMiB * 1048576L;
const double MiB = 1048576.0;
// The document's write: dd from the VM's own disk into a file, then sync.
Task Dd(string path) => lab.ShAsync($"dd if=/dev/vda of={path} bs=1M count={WriteMiB} conv=fsync status=none && sync", TimeSpan.FromMinutes(20));
var df = (await lab.ShAsync("df -m / | tail -1")).Trim();
display(lab.Describe());
display(HtmlView.Paragraph($"Monitor: QEMU {block.Qmp.QemuVersion}. Guest root filesystem (df -m): {df}"));
display(await block.QueryChainAsync(lab.Disk));

// ## 1 · Mirror while the guest creates, deletes and writes files; cancel after READY
//
// `drive-mirror sync=full` to a new `mirror1.qcow2` (limited to `MirrorSpeedMiB` so the copy takes a while), and
// while it copies, the guest runs the file workload (mkdir, touch, dd, rm, rmdir; a manifest with the SHA-256 of
// every file it leaves). Then the speed limit is lifted, READY awaited, and the job cancelled: QEMU converges and
// leaves `mirror1.qcow2` a consistent copy, the VM staying on its disk. The copy is checked as the document did, by
// booting a VM from it (through a throwaway overlay, so the copy is never written), or read offline.

var mirror1 = lab.NewFile("mirror1");
var job1 = await block.StartMirrorAsync(lab.Disk, new MirrorTarget.NewFile(mirror1), new MirrorOptions { Speed = speed });  // drive_mirror -f
var ops1 = await FileOpsWorkload.RunAsync(lab.Agent, "/root/ops1", FileOps, seed: 1);     // touch, mkdir, dd, rm, rmdir meanwhile
var atWorkEnd1 = await job1.SampleAsync();                                               // where the copy was when they ended
var hmpAtWorkEnd1 = await lab.HmpAsync("info block-jobs");
await job1.SetSpeedAsync(0);                                                             // the limit lifted
await job1.WaitForReadyAsync(block.JobTimeout);                                          // "as big as the original"
await job1.CancelAsync();                                                                // block_job_cancel
var result1 = await job1.WaitAsync(block.JobTimeout);
await job1.DisposeAsync();
var chain1 = await block.QueryChainAsync(lab.Disk);
var check1 = await lab.CheckCopyAsync(mirror1, [ops1], BootCopies);
var (clean1, image1) = await lab.CheckImagesAsync([mirror1]);
lab.Findings.Check("1. The file workload ran while the mirror was still copying (not READY yet)", !atWorkEnd1.IsReady,
    $"{ops1.Operations.Count} operations done at {atWorkEnd1.Offset / MiB:0} of {atWorkEnd1.Length / MiB:0} MiB, job {atWorkEnd1.Status}");
lab.Findings.Check("1. Cancel after READY keeps the VM on its disk", result1.StayedOn(chain1, disk), $"cancelled={result1.Cancelled}; active {chain1.Active.Name}");
lab.Findings.Check("1. Every created, deleted and written file and directory is in the copy as the manifest says", check1.AllOk, check1.Summary);
lab.Findings.Check("1. The copy is a valid image (qemu-img check)", clean1, image1);
display(HtmlView.Preformatted("HMP info block-jobs when the workload ended", hmpAtWorkEnd1.Trim()));
display($"mirror1: {result1.Offset / MiB:0} MiB copied in {result1.Elapsed.TotalSeconds:0.0} s; {check1.Files.Summary}");

// ## 2 · Storage outage in the middle of a mirror
//
// The target `mirror2-nbd.qcow2` is served by a separate `qemu-storage-daemon` over NBD on a unix socket (the
// document's NFS server). The VM opens it as an `nbd` node with a `reconnect-delay` longer than the outage, and
// `blockdev-mirror` copies to it. When a quarter is copied (or 256 MiB) the daemon is stopped (SIGTERM, like
// `service nfs stop`); during the outage the guest runs the file workload again and HMP `info block-jobs` is asked
// three times; after `OutageSeconds` (or when the workload is done, if later) the daemon is started again on the same
// socket; once the job is seen moving again the speed limit is lifted. Each step is one call below, in this order. The job moves again only some seconds after
// the server is back: the NBD client retries its connection with growing pauses. The job's length is the whole
// virtual disk (8 GiB): QEMU cannot assume an NBD target reads as zeroes, so it writes the zeroes too (cheap
// `WRITE_ZEROES` requests). The job's offset is sampled every `SampleMs` ms (a measurement, not how the job is
// driven). At READY the VM is paused (HMP `stop`), the job cancelled, and the copy compared with the VM's disk.

var mirror2 = lab.NewFile("mirror2-nbd");
OutageRun outage;
FileOpsWorkload ops2;
await using (var nbd = await block.StartMirrorOntoNbdAsync(lab.Disk, mirror2,        // NBD server up, blockdev-mirror onto it
    new OutagePlan { Outage = TimeSpan.FromSeconds(OutageSeconds), Speed = speed, SampleEvery = TimeSpan.FromMilliseconds(SampleMs) }))
{
    await nbd.WaitPartWayAsync();                                                     // a quarter copied
    await nbd.StopStorageAsync();                                                     // service nfs stop
    var work2 = nbd.RunDuringOutage(ct => FileOpsWorkload.RunAsync(lab.Agent, "/root/ops2", FileOps, seed: 2, ct));  // the guest works on
    await nbd.LookAtJobsAsync();                                                      // info block-jobs during the outage
    await nbd.KeepAwayUntilWorkEndsAsync();                                           // (its I/O must not need the server)
    await nbd.StartStorageAsync();                                                    // service nfs start
    ops2 = await work2;
    await nbd.WaitMovingAgainThenLiftSpeedAsync();                                    // the offset moves again; the limit is lifted
    await nbd.WaitForReadyAsync();
    await lab.HmpAsync("stop");                                                       // the document's `stop`: the copy then equals the disk
    await nbd.CancelAsync();                                                          // block_job_cancel at READY
    outage = nbd.Run;
}
var compare2 = await lab.QemuImg.CompareAsync(disk, mirror2);
var check2 = await lab.CheckCopyAsync(mirror2, [ops1, ops2], BootCopies);
var (progress, cut, back) = (outage.Progress, outage.CutAt, outage.BackAt);
lab.Findings.Check("2. While the storage is away the job stands still (offset flat)", progress.StoodStill,
    $"{progress} over {(back - cut).TotalSeconds:0.0} s (cut at {outage.OffsetAtCut / MiB:0.0} MiB)");
// Moving again is the measurement; READY only follows it (a job that never got there would have failed the cell).
lab.Findings.Check("2. When the storage is back the job moves again", progress.MovingAgainAt is not null,
    progress.MovingAgainAt is { } ra ? $"moving again {(ra - back).TotalSeconds:0.0} s after the restart; READY {(outage.ReadyAt - back).TotalSeconds:0.0} s after it" : "never moved again");
lab.Findings.Check("2. The job survived the outage without an error (NBD reconnect)", outage.Result.Errors.Count == 0, $"{outage.Result.Errors.Count} BLOCK_JOB_ERROR events");
lab.Findings.Check("2. The guest keeps working during the outage (its file workload completes while the storage is down)", outage.WorkDoneInOutage,
    $"{ops2.Operations.Count} file operations, finished {(outage.WorkDoneAt - cut).TotalSeconds:0.0} s after the cut; the server came back after {(back - cut).TotalSeconds:0.0} s");
lab.Findings.Check("2. The copy equals the VM's disk (qemu-img compare, VM paused)", compare2.Identical, compare2.Message);
lab.Findings.Check("2. Every file operation before and during the outage is in the copy", check2.AllOk, check2.Summary);
display(HtmlView.Preformatted("HMP info block-jobs during the outage", string.Join("\n", outage.MonitorDuringOutage)));
// Plotted until the limit is lifted: the rest of the 8 GiB (mostly zeroes) would flatten the outage to a line.
var plotted = outage.Samples.Where(s => s.At <= outage.LiftedAt).ToList();
display(Figures.Lines("Mirror to an NBD target whose server is stopped and restarted (until the speed limit is lifted)", "time since the mirror started (s)", "bytes copied, offset (MiB)",
        [new Series("offset", plotted.Select(s => outage.SecondsAt(s.At)).ToList(), plotted.Select(s => s.Offset / MiB).ToList())])
    .Shade(outage.SecondsAt(cut), outage.SecondsAt(back), "NBD server down"));

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

var before3 = await lab.Sizes.MeasureAsync("3. stopped, before HMP commit", disk, vmBase);
var commit3 = await block.HmpCommitOrByNodeAsync(lab.Disk);
var status3 = (await lab.HmpAsync("info status")).Trim();
var after3 = await lab.Sizes.MeasureAsync("3. after HMP commit", disk, vmBase);
var chain3 = await block.QueryChainAsync(lab.Disk);
var check3 = await lab.CheckCopyAsync(vmBase, [ops1, ops2], boot: false);
if (!commit3.SentHmp)
    lab.Findings.Note("3. HMP commit not sent: it would write a disk the lab did not create", commit3.HmpRefused);
// HMP commit also empties the overlay; a block-commit cancelled at READY leaves its data there (now in both).
var (diskData, baseData) = (before3[disk].DataBytes, before3[vmBase].DataBytes);
var movedDown = SizeVerdicts.DataMovedDown(diskData, baseData, after3[disk].DataBytes, after3[vmBase].DataBytes, overlayEmptied: commit3.SentHmp);
// "Works" is judged by what the commit did to the images (an HMP command that answers without an error may still
// have done nothing), with the VM still paused after it.
lab.Findings.Check(commit3.SentHmp ? "3. HMP commit works while the VM is stopped" : "3. Commit of the lab's layer alone (QMP block-commit by node, cancelled at READY) works while the VM is stopped",
    status3.Contains("paused") && commit3.Worked && movedDown, $"{commit3.Summary}; {status3}; the overlay's data {(movedDown ? "moved" : "did NOT move")} into vm-base.qcow2");
lab.Findings.Check("3. The overlay's data moved into its backing file (the document's base.img grows)",
    movedDown,
    $"vm-base.qcow2 holds {baseData / MiB:0.0} -> {after3[vmBase].DataBytes / MiB:0.0} MiB; disk.qcow2 {diskData / MiB:0.0} -> {after3[disk].DataBytes / MiB:0.0} MiB"
    + (commit3.SentHmp ? " (emptied by HMP commit)" : " (kept: the commit by node does not empty it)"));
lab.Findings.Check("3. The backing file alone now holds every file the guest made", check3.AllOk, check3.Files.Summary);
lab.Findings.Note("3. HMP commit keeps the chain", chain3.ToText());

await lab.HmpAsync("c");
await Dd("/root/commit-qmp.img");
await lab.HmpAsync("stop");
var before3b = await lab.Sizes.MeasureAsync("3. stopped, before QMP block-commit", disk, vmBase);
var chainBefore3b = await block.QueryChainAsync(lab.Disk);
var job3 = await block.StartCommitAsync(lab.Disk, top: null, @base: vmBase);           // block-commit of the active layer
await job3.WaitForReadyAsync(block.JobTimeout);                                       // READY: the base holds the top's data
await job3.CompleteAsync();                                                           // job-complete: onto the base
var result3 = await job3.WaitAsync(block.JobTimeout);
await job3.DisposeAsync();
var released3 = await block.ReleaseNodesLeftBehindAsync(chainBefore3b);               // blockdev-del: closes disk.qcow2
var chain3b = await block.QueryChainAsync(lab.Disk);
var after3b = await lab.Sizes.MeasureAsync("3. after QMP block-commit", disk, vmBase);
await lab.HmpAsync("c");
var (base3b, base3c) = (before3b[vmBase].DataBytes, after3b[vmBase].DataBytes);
lab.Findings.Check("3. QMP block-commit (active, while stopped) moves the overlay's data down and pivots onto the backing file",
    result3.PivotedOnto(chain3b, vmBase) && SizeVerdicts.WriteLanded(base3c - base3b, WriteMiB * 1048576L) && released3.Count > 0,
    $"{result3.Offset / MiB:0.0} MiB committed; vm-base.qcow2 holds {base3b / MiB:0.0} -> {base3c / MiB:0.0} MiB; chain {chain3b.ToText()}; old top's nodes closed: {string.Join(", ", released3)}");
display(lab.Sizes.Steps("3.").ToTable("Sizes around the commits (MiB)"));
display(chain3b);
display(commit3.SentHmp ? $"HMP {commit3.Hmp.Command}" : $"by node: {commit3.HmpRefused}");

// ## 4 · `job-complete` pivots the VM onto the mirror
//
// As the document's experiment 3: mirror to a new `mirror-a.qcow2`, at READY pause the VM (`stop`), complete,
// continue (`c`). `info block-jobs` is then empty and `info block` names the mirror. The guest writes `WriteMiB`
// MiB with `dd`: the mirror grows, the original (`vm-base.qcow2`) does not.

var mirrorA = lab.NewFile("mirror-a");
var chainBefore4 = await block.QueryChainAsync(lab.Disk);
var job4 = await block.StartMirrorAsync(lab.Disk, new MirrorTarget.NewFile(mirrorA));  // drive_mirror
await job4.WaitForReadyAsync(block.JobTimeout);                                      // in sync
await lab.HmpAsync("stop");
await job4.CompleteAsync();                                                          // block_job_complete
var result4 = await job4.WaitAsync(block.JobTimeout);
await job4.DisposeAsync();
var released4 = await block.ReleaseNodesLeftBehindAsync(chainBefore4);               // close what the VM left (libvirt's -blockdev nodes)
await lab.HmpAsync("c");
var chain4 = await block.QueryChainAsync(lab.Disk);
var jobsAfter4 = await lab.HmpAsync("info block-jobs");
var infoBlock4 = await lab.HmpAsync("info block");
var before4 = await lab.Sizes.MeasureAsync("4. after complete, before dd", vmBase, mirrorA);
await Dd("/root/test.img");
var after4 = await lab.Sizes.MeasureAsync("4. after dd", vmBase, mirrorA);
lab.Findings.Check("4. After job-complete the VM's disk is the mirror (QEMU's view); no job is left", result4.PivotedOnto(chain4, mirrorA) && jobsAfter4.Contains("No active jobs"),
    $"active {chain4.Active.Name}; info block-jobs: {jobsAfter4.Trim()}");
var infoBlockLine = infoBlock4.Split('\n').FirstOrDefault(l => l.Contains(".qcow2"))?.Trim() ?? infoBlock4.Trim();
lab.Findings.Note($"4. The document read `info block` as still naming the original; QEMU {block.Qmp.QemuVersion.ToString(3)} names {(infoBlockLine.Contains(Path.GetFileName(mirrorA)) ? "the mirror" : "something else")}", infoBlockLine);
lab.Findings.Check($"4. A {WriteMiB} MiB dd in the guest grows the mirror, not the original", SizeVerdicts.WriteLandedOnlyIn(after4.GrownSince(before4, mirrorA), WriteMiB * 1048576L, after4.GrownSince(before4, vmBase)),
    $"mirror-a +{after4.GrownSince(before4, mirrorA) / MiB:0.0} MiB, vm-base.qcow2 +{after4.GrownSince(before4, vmBase) / MiB:0.0} MiB");
display(chain4);
display(HtmlView.Preformatted("HMP info block", infoBlock4));
display(lab.Sizes.Steps("4.").ToTable("Sizes around the pivot (MiB)"));
display($"pivoted in {result4.Elapsed.TotalSeconds:0.0} s after copying {result4.Offset / MiB:0} MiB");

// ## 5 · A second mirror + complete right after the first
//
// As the document's experiment 4: from the switched VM, `drive-mirror` to `mirror-b.qcow2` and complete, this time
// without pausing the VM. The new copy is as big as `mirror-a.qcow2` (it copied the switched image, `dd` data
// included); after another `dd` and, as in the document, a `reboot` inside the VM, only `mirror-b.qcow2` has grown.
// The reboot is the guest's own (through the agent); the lab waits for the agent to answer from the new boot.

var mirrorB = lab.NewFile("mirror-b");
var job5 = await block.StartMirrorAsync(lab.Disk, new MirrorTarget.NewFile(mirrorB));  // drive_mirror, the VM running
await job5.WaitForReadyAsync(block.JobTimeout);
await job5.CompleteAsync();                                                          // block_job_complete
var result5 = await job5.WaitAsync(block.JobTimeout);
await job5.DisposeAsync();
var released5 = await block.ReleaseNodesLeftBehindAsync(chain4);
var chain5 = await block.QueryChainAsync(lab.Disk);
var before5 = await lab.Sizes.MeasureAsync("5. after 2nd complete, before dd", vmBase, mirrorA, mirrorB);
await Dd("/root/test_0000.img");
// The document then reboots inside the VM before looking at the sizes.
var sumBeforeReboot = await lab.Agent.Sha256Async("/root/test_0000.img");
var rebootTook = await lab.Guest.RebootAsync(TimeSpan.FromMinutes(5));
var sumAfterReboot = await lab.Agent.Sha256Async("/root/test_0000.img");
var chain5Reboot = await block.QueryChainAsync(lab.Disk);
var after5 = await lab.Sizes.MeasureAsync("5. after dd", vmBase, mirrorA, mirrorB);
var (sizeA5, sizeB5) = (before5[mirrorA].AllocatedBytes, before5[mirrorB].AllocatedBytes);
lab.Findings.Check("5. The second mirror copies the switched image: as big as the first mirror, the dd into it included", SizeVerdicts.CopiedTheSwitchedImage(sizeB5, sizeA5, WriteMiB * 1048576L) && result5.PivotedOnto(chain5, mirrorB),
    $"mirror-b {sizeB5 / MiB:0.0} MiB vs mirror-a {sizeA5 / MiB:0.0} MiB (a copy of the image before the switch would lack part 4's {WriteMiB} MiB dd); active {chain5.Active.Name}");
lab.Findings.Check("5. After a reboot inside the VM it still runs on the newest image, with the dd file intact", JobEnds.StillOnAfterReboot(chain5Reboot, mirrorB, sumBeforeReboot, sumAfterReboot),
    $"back in {rebootTook.TotalSeconds:0.0} s; active {chain5Reboot.Active.Name}; test_0000.img SHA-256 {(sumAfterReboot == sumBeforeReboot ? "unchanged" : "changed")}");
var (grownA, grownB, grownOrig) = (after5.GrownSince(before5, mirrorA), after5.GrownSince(before5, mirrorB), after5.GrownSince(before5, vmBase));
lab.Findings.Check("5. After the second complete only the newest image grows", SizeVerdicts.WriteLandedOnlyIn(grownB, WriteMiB * 1048576L, grownA, grownOrig),
    $"mirror-b +{grownB / MiB:0.0}, mirror-a +{grownA / MiB:0.0}, vm-base +{grownOrig / MiB:0.0} MiB");
display(lab.Sizes.Steps("5.").ToTable("Sizes around the second round (MiB)"));
display(chain5);

// ## 6 · Move the original image away while the VM runs
//
// After the pivots QEMU no longer holds the original image: none of its open files (`/proc/PID/fd`) is one the VM
// left. A libvirt domain opens every layer as a node of its own (`-blockdev`); a pivot done through the monitor, behind
// libvirt's back, leaves those nodes open until they are deleted, so the lab deletes them after each pivot (and says
// which). The original `vm-base.qcow2` and the first mirror then move, as in the document, to **another
// filesystem**: a tmpfs the lab mounts in its run folder (a rename within one filesystem could not disturb an open
// file; a move across filesystems copies the file and unlinks the original, so a QEMU still holding it would be left
// holding a deleted file). Afterwards QEMU's open files are read again by resolved path: none may be a moved image or
// a deleted file, and the active image must be among them. The guest keeps writing (a `dd` and a `sha256sum` of what
// it wrote) and the moved images are still valid.

var openBefore6 = lab.OpenImages();
// disk.qcow2 stays where it is (an overlay of vm-base.qcow2; its backing name follows the move below).
string[] originals = [vmBase, mirrorA];
long toMove = 0;
foreach (var f in originals)
    toMove += await lab.Host.FileSizeAsync(f);
var (otherFs, otherFsWhy) = await lab.Run.TryMountScratchFilesystemAsync("other-fs", toMove + toMove / 4 + (64 << 20));
var into = otherFs is null ? "moved" : "other-fs";
string[] moved = [await lab.MoveIntoAsync(into, vmBase, "vm-base-moved"), await lab.MoveIntoAsync(into, mirrorA, "mirror-a-moved")];
// disk.qcow2, which the VM left at the first pivot, names vm-base.qcow2 as its backing file: its header follows the
// move (qemu-img rebase -u changes only the name), so the chain a kept run leaves stays whole for qemu-img check.
await lab.QemuImg.RebaseAsync(disk, moved[0], new RebaseOptions { Unsafe = true, BackingFormat = "qcow2" });
var (fromFs, toFs) = (await FilesystemOf.LookUpAsync(lab.Run.ImageFolder, host: lab.Host), await FilesystemOf.LookUpAsync(moved[0], host: lab.Host));
var openAfter6 = lab.OpenFiles();
var ddAfterMove = await lab.Agent.ShellAsync($"dd if=/dev/urandom of=/root/after-move.bin bs=1M count={Math.Min(WriteMiB, 16)} conv=fsync status=none && sync && sha256sum /root/after-move.bin && cat /proc/loadavg",
    new GuestExecOptions { Timeout = TimeSpan.FromMinutes(10) });
var chain6 = await block.QueryChainAsync(lab.Disk);
var (movedClean, movedChecks) = await lab.CheckImagesAsync(moved);
var released = released4.Concat(released5).ToList();
lab.Findings.Note("6. Monitor-owned nodes of the images the VM left, closed after the pivots (blockdev-del, as libvirt does after its own pivots)",
    released.Count == 0 ? "none: QEMU freed the old layers itself" : string.Join(", ", released));
if (openBefore6 is null)
    lab.Findings.Note("6. After the pivots QEMU holds none of the images the VM left", "not checked: the lab does not know QEMU's process id, so its open files cannot be read");
else
{
    var (noneLeftHeld, leftHow) = MovedImages.JudgeLeft(openBefore6, [vmBase, disk, mirrorA], chain5.Active.Filename);
    lab.Findings.Check("6. After the pivots QEMU holds none of the images the VM left", noneLeftHeld, leftHow);
}
lab.Findings.Check("6. With the original moved away the VM keeps running and writing", JobEnds.KeptWriting(ddAfterMove.ExitCode, chain6, mirrorB),
    $"dd + sync exit {ddAfterMove.ExitCode}, sha256sum: {ddAfterMove.StandardOutput.Split('\n')[0].Split(' ')[0]}; active {chain6.Active.Name}");
lab.Findings.Check("6. The moved images are intact (qemu-img check)", movedClean, movedChecks);
if (otherFs is null)
    lab.Findings.Note("6. The original moved to another filesystem", $"not done: {otherFsWhy}; moved within {fromFs} instead, which cannot disturb an open file");
else
    lab.Findings.Check("6. The original moved to another filesystem", fromFs.MountPoint != toFs.MountPoint, $"from {fromFs} to {toFs}");
if (openAfter6 is null)
    lab.Findings.Note("6. After the move QEMU holds none of the moved images and no deleted file", "not checked: the lab does not know QEMU's process id");
else
{
    var (noneHeld, heldHow) = MovedImages.Judge(openAfter6, originals.Zip(moved).ToList(), chain6.Active.Filename);
    lab.Findings.Check("6. After the move QEMU holds none of the moved images and no deleted file, and still holds the active image", noneHeld, heldHow);
}
display($"moved {string.Join(", ", moved.Select(Path.GetFileName))} to {Path.GetDirectoryName(moved[0])}");

// ## 7 · Shallow mirror (`-n`, `sync=top`) vs full mirror
//
// As the document's experiment 6: the VM's disk becomes an overlay `vm-top.qcow2` on a shared backing file
// (`mirror-b.qcow2` now plays the document's `base.img`; a live snapshot puts the overlay there), and the guest
// writes `WriteMiB` MiB into it. The target `mirror-shallow.qcow2` is made beforehand with
// `qemu-img create -b mirror-b.qcow2`, and the mirror reuses it (`mode=existing`, the document's `-n`) copying
// only the top (`sync=top`) while the guest runs the file workload. For comparison a full mirror of the same disk
// goes to a new file. Both are cancelled at READY with the VM paused, so both copies show the same disk.

var top7 = lab.NewFile("vm-top");
await block.SnapshotAsync(lab.Disk, top7);
await Dd("/root/test7.img");
var shallow = lab.NewFile("mirror-shallow");
await lab.QemuImg.CreateAsync(shallow, "qcow2", options: new CreateOptions { BackingFile = mirrorB, BackingFormat = "qcow2" });
var job7s = await block.StartMirrorAsync(lab.Disk, new MirrorTarget.ExistingFile(shallow), new MirrorOptions { Sync = MirrorSync.Top, Speed = speed });  // drive_mirror -n
var ops7 = await FileOpsWorkload.RunAsync(lab.Agent, "/root/ops7", FileOps, seed: 7);
var atWorkEnd7 = await job7s.SampleAsync();
await job7s.SetSpeedAsync(0);
await job7s.WaitForReadyAsync(block.JobTimeout);
await lab.HmpAsync("stop");                       // both copies are of one paused disk
await job7s.CancelAsync();
var s7 = await job7s.WaitAsync(block.JobTimeout);
await job7s.DisposeAsync();
var full7 = lab.NewFile("mirror-full");
var job7f = await block.StartMirrorAsync(lab.Disk, new MirrorTarget.NewFile(full7));  // drive_mirror, sync=full
await job7f.WaitForReadyAsync(block.JobTimeout);
await job7f.CancelAsync();
var f7 = await job7f.WaitAsync(block.JobTimeout);
await job7f.DisposeAsync();
var compare7 = await lab.QemuImg.CompareAsync(shallow, full7);
var compare7Top = await lab.QemuImg.CompareAsync(shallow, top7);
await lab.HmpAsync("c");
var sizes7 = await lab.Sizes.MeasureAsync("7. both copies", shallow, full7);
var check7 = await lab.CheckCopyAsync(shallow, [ops7], BootCopies);
lab.Findings.Check("7. The shallow mirror copies only what the VM wrote on top of the shared backing file", ShallowMirror.CopiedOnlyTheTop(s7, f7),
    $"sync=top copied {s7.Offset / MiB:0.0} MiB in {s7.Elapsed.TotalSeconds:0.0} s (speed-limited until the workload ended); sync=full {f7.Offset / MiB:0.0} MiB in {f7.Elapsed.TotalSeconds:0.0} s");
lab.Findings.Check("7. The shallow copy (with its backing file) shows the same disk as the full copy and as the VM", compare7.Identical && compare7Top.Identical, $"vs full: {compare7.Message}; vs vm-top: {compare7Top.Message}");
lab.Findings.Check("7. File operations done while the shallow mirror job ran are in the shallow copy", check7.AllOk,
    $"{check7.Summary}; the job was {atWorkEnd7.Status} when they ended (a shallow mirror reaches READY quickly; from then on it copies each new write)");
var (alloc7s, alloc7f) = (sizes7[shallow].AllocatedBytes / MiB, sizes7[full7].AllocatedBytes / MiB);
lab.Findings.Note("7. Allocated on the host: shallow vs full", $"{alloc7s:0.0} MiB vs {alloc7f:0.0} MiB");
display(Figures.Columns("Shallow vs full mirror of the same disk", "size (MiB)", ["shallow (-n, sync=top)", "full (sync=full)"],
    [("bytes copied by the job", [s7.Offset / MiB, f7.Offset / MiB]), ("allocated size of the copy", [alloc7s, alloc7f])]));

// ## Findings

display(lab.Findings);

// ## The chain at the end
//
// The chain the VM ended on, in QEMU's view and in qemu-img's, and every size measured along the way.

var (liveEnd, headersEnd, agreementEnd) = await block.CheckChainAgreementAsync(lab.Disk);
display(liveEnd);
display(HtmlView.Paragraph($"qemu-img: {headersEnd.ToText()}; agreement: {agreementEnd.Agrees}"));
display(lab.Sizes.Rows.ToTable("Every size measured (MiB)"));

// ## Clean-up and the journal
//
// The guest is shut down (your domain is handed back on its own disks, with the evidence that none of its images was
// written). Unless `KeepArtifacts`, every image the lab made is removed (the cached base never is); with it, the images
// stay in the output folder with `artifacts.json` naming each file's role. Below, every command the lab issued, in order.

display(await lab.FinishAsync());
