// 04-snapshot-chain-io.csx: generated from notebooks/src/04-snapshot-chain-io.dib by tools/make-notebooks; edit the source, not this file.
// Run: scripts/lab run scripts/04-snapshot-chain-io.csx -- NAME=VALUE ...   (parameters as in the notebook)

// # 04 · Disk IO at each depth of a snapshot chain (002)
//
// **What the document does** (`002_cebd9d7474a778b1.txt`): it snapshots a VM's *data disk* over and over (external,
// disk-only) and, after each snapshot, churns files in the guest through the guest agent: a tag file per snapshot,
// delete the files whose names contain a digit, `o`, `j` or `b`, then write 20 files of 70 MB of random data. When
// 10 snapshots exist it reverts to each one in turn (newest first), boots, and runs its fio job file: 4k, direct,
// libaio, four stonewalled jobs (write, randwrite, read, randread), `size=3072m`, `timeout=60`. The question: what
// does a deep chain of overlays cost in IO?
//
// **Here** the guest gets a blank data disk of the lab's (ext4 on `/data`), snapshotted alone with the lab's live
// snapshot (QMP `blockdev-snapshot-sync` on `Backend=qemu`, libvirt's disk-only snapshot on `Backend=libvirt`). The
// churn is the document's script. "Revert to snapshot k" is done as the lab always reverts: the data disk goes onto a
// fresh overlay on top of layer k, so layer k stays as it was (the document instead deleted the newer layers and
// booted on layer k itself, writing it). The embedded guest boots again with its data disk on that overlay (`/dev/vdb`).
// On **your own domain** (`-p Domain NAME`, running or shut off) the lab moves your disks onto its overlays as in the
// other notebooks, hot-plugs its data disk while the guest runs (the first free virtio name after your disks; a q35
// domain needs a free `pcie-root-port`, which virt-install gives its domains), and reverts by unmounting, unplugging
// it and plugging in the fresh overlay: your guest is never booted onto other images, and your disks are handed back
// unwritten. Your guest needs `mkfs.ext4` and `fio`. Every wait is on a condition: the churn command's exit, the
// agent's first answer after boot, the guest seeing or releasing a disk, fio's exit.
//
// **Scale**: the document's sizes are `Snapshots=9` (its loop stops when `snap_index == 10`, after snapshot 9; its
// text says 10), `FilesPerSnapshot=20`, `FileMiB=70`, `FioSize=3072m`,
// `FioSeconds=60`: about 14 GB of random writes and 44 minutes of fio, too long under TCG. The defaults here are
// scaled (5 snapshots, 20 files of 8 MiB, fio 256 MiB for at most 10 s per job); pass the document's values with
// `-p` to run it as written. Under TCG every number is slow in absolute terms: read the trends, not the values.
//
// **What the document's fio jobs cannot show, and what is added.** Its jobs read and write one file, written fresh in
// the top overlay at each depth: its reads find their data in the top layer and never walk down the chain, so they
// cannot show the cost of depth. (And when the write job ends at its time limit before the file is full, the read
// jobs partly read space fio only fallocated, which ext4 answers with zeroes without touching the disk; the
// notebook measures how much.) So before the first snapshot the guest writes a **probe file** of random data into the
// base layer; at every depth the guest reads all of it, 4k random reads with O_DIRECT, `Repeats` times, fio refusing
// to write (`--readonly`). `qemu-img map` shows which layer holds the probe's blocks, so the notebook checks that the
// reads really go to the base, through every overlay above it. The depth claim is then a hypothesis with a stated
// test: *the deepest chain's probe IOPS are below the shallowest chain's in every repeat* (the ranges do not
// overlap); overlapping ranges or the reverse order refute it.

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
ScriptArgs.CheckNames(Args, ["Snapshots", "FilesPerSnapshot", "FileMiB", "FioSize", "FioSeconds", "ProbeMiB", "Repeats", "ProbeSeconds", "Backend", "Domain", "DomainDisk", "LibvirtUri", "HostFolder", "KeepArtifacts", "OutputDir"]);
int Snapshots = ScriptArgs.Get<int>(Args, "Snapshots", 5);
int FilesPerSnapshot = ScriptArgs.Get<int>(Args, "FilesPerSnapshot", 20);
int FileMiB = ScriptArgs.Get<int>(Args, "FileMiB", 8);
string FioSize = ScriptArgs.Get<string>(Args, "FioSize", "256m");
int FioSeconds = ScriptArgs.Get<int>(Args, "FioSeconds", 10);
int ProbeMiB = ScriptArgs.Get<int>(Args, "ProbeMiB", 32);
int Repeats = ScriptArgs.Get<int>(Args, "Repeats", 3);
int ProbeSeconds = ScriptArgs.Get<int>(Args, "ProbeSeconds", 300);
string Backend = ScriptArgs.Get<string>(Args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(Args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(Args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(Args, "LibvirtUri", "qemu:///system");
string HostFolder = ScriptArgs.Get<string>(Args, "HostFolder", "");
bool KeepArtifacts = ScriptArgs.Get<bool>(Args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(Args, "OutputDir", "");

if (Snapshots < 1 || FilesPerSnapshot < 1 || FileMiB < 1 || FioSeconds < 1 || ProbeMiB < 1 || Repeats < 1 || ProbeSeconds < 1)
    throw new LabUsageException("Snapshots, FilesPerSnapshot, FileMiB, FioSeconds, ProbeMiB, Repeats and ProbeSeconds must be at least 1");
var fioMiB = FioSize.EndsWith("g", StringComparison.OrdinalIgnoreCase) ? long.Parse(FioSize[..^1]) * 1024 : long.Parse(FioSize.TrimEnd('m', 'M'));
// Room for fio's file and the churn: about 40% of the names survive each round's deletion, so files pile up.
var dataMiB = fioMiB + ProbeMiB + 3L * FilesPerSnapshot * FileMiB + 512;
var lab = await Lab.StartAsync("04-snapshot-chain-io", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri, HostFolder = HostFolder,
    KeepArtifacts = KeepArtifacts, OutputDir = OutputDir, DataDisks = [new DataDisk("data", dataMiB)],
});
var data = lab.DataDisks[0];
await lab.ShAsync($"mkfs.ext4 -q -F {lab.DataDiskDevices[0]} && mkdir -p /data && mount {lab.DataDiskDevices[0]} /data");
// The probe: written and synced before the first snapshot, so its blocks live in the base layer; the churn never
// deletes it (it removes only tekkaman.* files). ext4 is on the whole device, so filefrag's block numbers are disk offsets.
await lab.ShAsync($"dd if=/dev/urandom of=/data/probe bs=1M count={ProbeMiB} conv=fsync status=none", TimeSpan.FromMinutes(30));
var probe = await FileExtents.ReadAsync(lab.Agent, "/data/probe");
display(lab.Describe());

// ## The snapshots, with the document's churn after each
//
// Snapshot k moves the data disk onto `snapK.qcow2`; then the guest runs the document's `write_data.sh` with k: the
// tag file `TAG_aio_vdb_K`, the deletions, and the new random files (`sync` at the end, so the layer holds them).

// The document's write_data.sh, as it wrote it (mktemp names, /dev/urandom), with its sizes as parameters.
string Churn(int k) => $@"set -e
cd /data
touch /data/{RevertTags.Expected(k)}
for fn in $(find . -name 'tekkaman.*' | grep -E '[0-9]|o|j|b' -i); do rm -f ""$fn""; done
for n in $(seq 1 {FilesPerSnapshot}); do f=$(mktemp tekkaman.XXX); dd if=/dev/urandom of=""$f"" bs=1M count={FileMiB} status=none; done
sync
ls /data | wc -l";

var layers = new List<string> { lab.Run.PathOf("data") };
var churnRows = new List<object>();
for (var k = 1; k <= Snapshots; k++)
{
    var overlay = lab.NewFile($"snap{k}");
    var clock = System.Diagnostics.Stopwatch.StartNew();
    await lab.Block.SnapshotAsync(data, overlay);
    var snapshotMs = clock.Elapsed.TotalMilliseconds;
    var files = int.Parse((await lab.ShAsync(Churn(k), TimeSpan.FromMinutes(30))).Trim());
    layers.Add(overlay);
    churnRows.Add(new { snapshot = k, snapshotMs = Math.Round(snapshotMs), churnSeconds = Math.Round(clock.Elapsed.TotalSeconds - snapshotMs / 1000, 1), filesOnData = files });
}
var chain = await lab.Block.QueryChainAsync(data);
lab.Findings.Check($"The data disk runs on a chain of {Snapshots + 1} layers (base and {Snapshots} snapshots)", chain.IsExactly(Enumerable.Reverse(layers)), chain.ToText());
display(Table.From(churnRows, "Snapshot and churn"));
display(chain);

// ## fio at each depth
//
// For k = Snapshots down to 0 (newest first, as the document's reverts), the data disk goes onto a fresh overlay
// over layer k, a chain of k + 2 layers: the embedded guest powers off and boots with it; on your domain it is
// unplugged and the overlay plugged in while the guest runs. Then the document's four jobs run one after the
// other on `/data/fio_data_test`.

string[] jobs = ["write", "randwrite", "read", "randread"];
var runs = new List<(int Snapshot, int Depth, string Job, FioIo Io)>();
var probeRuns = new List<(int Snapshot, int Depth, int Repeat, FioIo Io)>();
var probeLayers = new Dictionary<int, (int Depth, IReadOnlyDictionary<int, long> BytesByLayer)>();
var unwrittenAtRead = new Dictionary<int, double>();
var newestTags = new Dictionary<int, string>();
for (var k = Snapshots; k >= 0; k--)
{
    var revert = lab.NewFile($"revert{k}");
    await lab.QemuImg.CreateAsync(revert, "qcow2", options: new CreateOptions { BackingFile = layers[k], BackingFormat = "qcow2" });
    var device = await lab.PutDataDiskOnAsync(data, revert);
    await lab.ShAsync($"mkdir -p /data && mount {device} /data");
    // The document's init_test.sh found "which snapshot is this" from the newest tag file.
    newestTags[k] = (await lab.ShAsync($"ls /data | grep '^{RevertTags.Prefix}' | sort -t_ -k4 -n | tail -1")).Trim();
    var depth = (await lab.Block.QueryChainAsync(data)).Count;
    // Which layer holds each of the probe's blocks now (0 = the fresh overlay, depth - 1 = the base).
    probeLayers[k] = (depth, probe.BytesByLayer(await lab.QemuImg.MapAsync(revert)));
    for (var r = 1; r <= Repeats; r++)
    {
        var read = await Fio.RunAsync(lab.Agent, new FioJob
        {
            Name = $"probe-snap{k}-{r}", Filename = "/data/probe", ReadWrite = "randread", BlockSize = "4k", Size = $"{ProbeMiB}m",
            Direct = true, IoEngine = "libaio", ReadOnly = true, Runtime = TimeSpan.FromSeconds(ProbeSeconds), TimeBased = false,
        });
        probeRuns.Add((k, depth, r, read.Job.Read));
    }
    foreach (var job in jobs)
    {
        if (job == "read")
        {
            // How much of fio's file the write jobs left only fallocated: reads there never reach the disk.
            var f = await FileExtents.ReadAsync(lab.Agent, "/data/fio_data_test");
            unwrittenAtRead[k] = f.Size == 0 ? 0 : (double)Math.Min(f.UnwrittenBytes, f.Size) / f.Size;
        }
        var result = await Fio.RunAsync(lab.Agent, new FioJob
        {
            Name = $"{job}-snap{k}", Filename = "/data/fio_data_test", ReadWrite = job, BlockSize = "4k", Size = FioSize,
            Direct = true, IoEngine = "libaio", Runtime = TimeSpan.FromSeconds(FioSeconds), TimeBased = false,
        });
        runs.Add((k, depth, job, job.Contains("write") ? result.Job.Write : result.Job.Read));
    }
}
display(Table.From(runs.Select(r => new
{
    snapshot = r.Snapshot, layers = r.Depth, job = r.Job, iops = Math.Round(r.Io.Iops), MiBps = Math.Round(r.Io.BytesPerSecond / 1048576.0, 1),
    meanUs = Math.Round(r.Io.MeanLatency.TotalMicroseconds), p99Us = r.Io.P99Latency is { } p ? Math.Round(p.TotalMicroseconds) : double.NaN,
}), "fio per snapshot and job (the document's jobs, one run each)"));

Series PerJob(string job, Func<FioIo, double> value) =>
    new(job, runs.Where(r => r.Job == job).OrderBy(r => r.Depth).Select(r => (double)r.Depth).ToList(),
             runs.Where(r => r.Job == job).OrderBy(r => r.Depth).Select(r => value(r.Io)).ToList());
var probeByDepth = probeRuns.GroupBy(r => r.Depth).OrderBy(g => g.Key).Select(g => (Depth: g.Key, Iops: Spread.Of(g.Select(r => r.Io.Iops)))).ToList();
display(Table.From(probeByDepth.Select(p => new
{
    layers = p.Depth, medianIops = Math.Round(p.Iops.Median), minIops = Math.Round(p.Iops.Min), maxIops = Math.Round(p.Iops.Max), runs = p.Iops.Count,
    baseLayerMiB = Math.Round(probeLayers.Values.First(v => v.Depth == p.Depth).BytesByLayer.GetValueOrDefault(p.Depth - 1) / 1048576.0, 1),
}), $"Probe: 4k random O_DIRECT reads of the {ProbeMiB} MiB written in the base layer"));
double[] depthsX = [.. probeByDepth.Select(p => (double)p.Depth)];
display(Figures.Lines("Reads of base-layer data against chain depth (median, min and max of the repeats)", "layers in the data disk's chain", "IOPS",
    [new Series("median", depthsX, [.. probeByDepth.Select(p => p.Iops.Median)]), new Series("min", depthsX, [.. probeByDepth.Select(p => p.Iops.Min)]),
     new Series("max", depthsX, [.. probeByDepth.Select(p => p.Iops.Max)])]));
display(Figures.Lines("IOPS against chain depth (the document's jobs)", "layers in the data disk's chain", "IOPS", jobs.Select(j => PerJob(j, io => io.Iops))));
display(Figures.Lines("p99 completion latency against chain depth", "layers in the data disk's chain", "p99 latency (ms)",
    jobs.Select(j => PerJob(j, io => (io.P99Latency ?? io.MeanLatency).TotalMilliseconds))));

// ## What each layer holds
//
// Allocated bytes per layer (`qemu-img info`'s disk size): the churn of each round lands in its own overlay.

var sizes = new List<(string Layer, double MiB)>();
foreach (var layer in layers)
    sizes.Add((Path.GetFileNameWithoutExtension(layer), ((await lab.QemuImg.InfoAsync(layer, forceShare: true)).ActualSize ?? 0) / 1048576.0));
display(Figures.Columns("Allocated size of each layer of the data disk", "MiB on the host", sizes.Select(s => s.Layer).ToList(),
    [("allocated", sizes.Select(s => s.MiB).ToList())]));

// ## Findings
//
// Each trend compares the deepest chain with the shallowest (k = 0: the blank base and one overlay). The document's
// jobs ran once per depth: their ratios are notes. The probe's repeats decide the depth hypothesis. Under TCG the
// guest's CPU is emulated, and each IO costs far more CPU than on KVM, so a fixed per-layer cost in QEMU's block layer
// is a smaller share of each read here than it would be on KVM: a difference shown here should be larger there, and
// an overlap here does not rule one out on KVM. The reverts run deepest first, so a host that gets busier or quieter
// during the run tilts the comparison; the ranges of several repeats are what guard against reading noise as a trend.

double At(string job, bool deepest) => (deepest ? runs.Where(r => r.Job == job).MaxBy(r => r.Depth) : runs.Where(r => r.Job == job).MinBy(r => r.Depth)).Io.Iops;
foreach (var job in jobs)
{
    var shallow = At(job, false);
    var deep = At(job, true);
    lab.Findings.Note($"{job} IOPS, deepest chain vs shallowest ({Snapshots + 2} vs 2 layers)",
        $"{deep:0} vs {shallow:0} IOPS: {deep / shallow:0.00}x");
    // As data too, so that a sweep over Snapshots (or FioSize) can plot them.
    lab.Findings.Measure($"{job}_iops_deepest", deep, "IOPS");
    lab.Findings.Measure($"{job}_iops_shallowest", shallow, "IOPS");
}
var randRead = runs.Where(r => r.Job == "randread").OrderBy(r => r.Depth).ToList();
var falls = randRead[^1].Io.Iops < randRead[0].Io.Iops;
lab.Findings.Note("The document's random-read IOPS, deepest vs shallowest (one run each; its file lives in the top layer)", falls
    ? $"lower: {randRead[^1].Io.Iops:0} at {randRead[^1].Depth} layers vs {randRead[0].Io.Iops:0} at {randRead[0].Depth}"
    : $"not lower: {randRead[^1].Io.Iops:0} at {randRead[^1].Depth} layers vs {randRead[0].Io.Iops:0} at {randRead[0].Depth}");
var unwrittenMax = unwrittenAtRead.MaxBy(u => u.Value);
lab.Findings.Note("Share of fio's file still unwritten (only fallocated) when the document's read jobs ran",
    unwrittenMax.Value == 0 ? "none at any depth: every read job read written data"
        : $"up to {unwrittenMax.Value:P0} (after reverting to snapshot {unwrittenMax.Key}): reads there return zeroes from ext4 without reaching the disk, so the read jobs' IOPS overstate the disk");

// The probe: it must have read all of its data, from the base layer, at every depth.
var shortProbes = probeRuns.Where(r => r.Io.Bytes != ProbeMiB * 1048576L).ToList();
lab.Findings.Check($"Every probe run read all {ProbeMiB} MiB (fio's io_bytes)", shortProbes.Count == 0,
    shortProbes.Count == 0 ? $"{probeRuns.Count} runs ({Repeats} per depth), each {ProbeMiB} MiB"
        : string.Join("; ", shortProbes.Select(r => $"snapshot {r.Snapshot} run {r.Repeat}: {r.Io.Bytes / 1048576.0:0.#} MiB (stopped at ProbeSeconds={ProbeSeconds}?)")));
var offBase = probeLayers.Where(p => p.Value.BytesByLayer.Any(b => b.Key != p.Value.Depth - 1 && b.Value > 0)).ToList();
lab.Findings.Check("At every depth qemu-img map puts all the probe's blocks in the base layer, below every overlay", offBase.Count == 0 && probe.WrittenBytes == ProbeMiB * 1048576L,
    offBase.Count == 0 ? $"{probe.WrittenBytes / 1048576.0:0.#} MiB in {probe.Extents.Count} extent(s), at depth {string.Join(", ", probeLayers.OrderBy(p => p.Value.Depth).Select(p => $"{p.Value.Depth - 1} of {p.Value.Depth} layers"))}"
        : string.Join("; ", offBase.Select(p => $"after reverting to snapshot {p.Key}: " + string.Join(", ", p.Value.BytesByLayer.Select(b => $"{b.Value / 1048576.0:0.#} MiB at depth {b.Key}")))));
var shallowest = probeByDepth[0];
var deepest = probeByDepth[^1];
lab.Findings.Measure("chain_layers_deepest", deepest.Depth, "layers");
lab.Findings.Measure("probe_median_iops_deepest", deepest.Iops.Median, "IOPS");
lab.Findings.Measure("probe_median_iops_shallowest", shallowest.Iops.Median, "IOPS");
var depthClaim = $"4k random O_DIRECT reads of base-layer data are slower through {deepest.Depth} layers than through {shallowest.Depth}";
if (DepthCost.CanTest(shallowest.Iops, deepest.Iops))
{
    var (slower, how) = DepthCost.Slower(shallowest.Iops, shallowest.Depth, deepest.Iops, deepest.Depth, "IOPS");
    lab.Findings.Hypothesis(depthClaim, slower, $"test: every deep run below every shallow run. {how}");
}
else
{
    lab.Findings.Note(depthClaim, $"not tested: {Repeats} run(s) per depth give no spread (the test needs {DepthCost.MinimumRepeats}); median IOPS {deepest.Iops.Median:0} vs {shallowest.Iops.Median:0}");
}
// fio ends each job at FioSize or after FioSeconds, whichever comes first; one that did neither was cut short.
var fioEnded = runs.Where(r => r.Io.RanToItsEnd(fioMiB << 20, TimeSpan.FromSeconds(FioSeconds))).ToList();
var shortest = runs.MinBy(r => r.Io.Runtime);
lab.Findings.Check("Every fio job ran to its end at every depth (FioSize moved or FioSeconds reached)", fioEnded.Count == runs.Count,
    $"{fioEnded.Count} of {runs.Count} runs; the shortest, {shortest.Job} at {shortest.Depth} layers: {shortest.Io.Bytes / 1048576.0:0} of {fioMiB} MiB in {shortest.Io.Runtime.TotalSeconds:0.0} of {FioSeconds} s");
var wrongTags = RevertTags.Wrong(newestTags);
lab.Findings.Check("After reverting to snapshot k the newest tag file is TAG_aio_vdb_k (none for the base), for every k", wrongTags.Count == 0,
    wrongTags.Count == 0 ? $"{newestTags.Count} reverts, each on its own layer" : string.Join("; ", wrongTags.Select(t => $"k={t.Key}: '{t.Value}'")));
var (clean, summary) = await lab.CheckImagesAsync(layers);
lab.Findings.Check("qemu-img check accepts every layer of the data disk", clean, summary);
display(lab.Findings);

// ## Clean-up and the journal
//
// The guest stops and is removed; the run's images (data disk, snapshots, revert overlays) are removed unless
// `KeepArtifacts`. Below, every command the lab issued, in order.

display(await lab.FinishAsync());
