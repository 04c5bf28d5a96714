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
// **Here** the embedded guest gets a blank data disk of the lab's (`/dev/vdb`, ext4 on `/data`), snapshotted alone
// with the lab's live snapshot (QMP `blockdev-snapshot-sync` on `Backend=qemu`, libvirt's disk-only snapshot on
// `Backend=libvirt`). The churn is the document's script. "Revert to snapshot k" is done as the lab always reverts:
// the guest boots on a fresh overlay on top of layer k, so layer k stays as it was (the document instead deleted the
// newer layers and booted on layer k itself, writing it). Every wait is on a condition: the churn command's exit, the
// agent's first answer after boot, fio's exit.
//
// **Scale**: the document's sizes are `Snapshots=9` (its loop stops when `snap_index == 10`, after snapshot 9; its
// text says 10), `FilesPerSnapshot=20`, `FileMiB=70`, `FioSize=3072m`,
// `FioSeconds=60`: about 14 GB of random writes and 44 minutes of fio, too long under TCG. The defaults here are
// scaled (5 snapshots, 20 files of 8 MiB, fio 256 MiB for at most 10 s per job); pass the document's values with
// `-p` to run it as written. Under TCG every number is slow in absolute terms: read the trends, not the values.

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
int Snapshots = ScriptArgs.Get<int>(Args, "Snapshots", 5);
int FilesPerSnapshot = ScriptArgs.Get<int>(Args, "FilesPerSnapshot", 20);
int FileMiB = ScriptArgs.Get<int>(Args, "FileMiB", 8);
string FioSize = ScriptArgs.Get<string>(Args, "FioSize", "256m");
int FioSeconds = ScriptArgs.Get<int>(Args, "FioSeconds", 10);
string Backend = ScriptArgs.Get<string>(Args, "Backend", "qemu");
string Domain = ScriptArgs.Get<string>(Args, "Domain", "");
string DomainDisk = ScriptArgs.Get<string>(Args, "DomainDisk", "");
string LibvirtUri = ScriptArgs.Get<string>(Args, "LibvirtUri", "qemu:///system");
bool KeepArtifacts = ScriptArgs.Get<bool>(Args, "KeepArtifacts", false);
string OutputDir = ScriptArgs.Get<string>(Args, "OutputDir", "");

if (Snapshots < 1 || FilesPerSnapshot < 1 || FileMiB < 1 || FioSeconds < 1)
    throw new LabUsageException("Snapshots, FilesPerSnapshot, FileMiB and FioSeconds must be at least 1");
var fioMiB = FioSize.EndsWith("g", StringComparison.OrdinalIgnoreCase) ? long.Parse(FioSize[..^1]) * 1024 : long.Parse(FioSize.TrimEnd('m', 'M'));
// Room for fio's file and the churn: about 40% of the names survive each round's deletion, so files pile up.
var dataMiB = fioMiB + 3L * FilesPerSnapshot * FileMiB + 512;
var lab = await Lab.StartAsync("04-snapshot-chain-io", new LabSetup
{
    Backend = Backend, Domain = Domain, DomainDisk = DomainDisk, LibvirtUri = LibvirtUri,
    KeepArtifacts = KeepArtifacts, OutputDir = OutputDir, DataDisks = [new DataDisk("data", dataMiB)],
});
var data = lab.DataDisks[0];
await lab.ShAsync("mkfs.ext4 -q -F /dev/vdb && mkdir -p /data && mount /dev/vdb /data");
display(lab.Describe());

// ## The snapshots, with the document's churn after each
//
// Snapshot k moves the data disk onto `snapK.qcow2`; then the guest runs the document's `write_data.sh` with k: the
// tag file `TAG_aio_vdb_K`, the deletions, and the new random files (`sync` at the end, so the layer holds them).

// The document's write_data.sh, as it wrote it (mktemp names, /dev/urandom), with its sizes as parameters.
string Churn(int k) => $@"set -e
cd /data
touch /data/TAG_aio_vdb_{k}
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
lab.Findings.Check($"The data disk runs on a chain of {Snapshots + 1} layers (base and {Snapshots} snapshots)", chain.Count == Snapshots + 1, chain.ToText());
display(Table.From(churnRows, "Snapshot and churn"));
display(chain);

// ## fio at each depth
//
// For k = Snapshots down to 0 (newest first, as the document's reverts), the guest powers off and boots with its
// data disk on a fresh overlay over layer k: a chain of k + 2 layers. Then the document's four jobs run one after the
// other on `/data/fio_data_test`.

string[] jobs = ["write", "randwrite", "read", "randread"];
var runs = new List<(int Snapshot, int Depth, string Job, FioIo Io)>();
var newestTags = new Dictionary<int, string>();
for (var k = Snapshots; k >= 0; k--)
{
    var revert = lab.NewFile($"revert{k}");
    await QemuImg.CreateAsync(revert, "qcow2", options: new CreateOptions { BackingFile = layers[k], BackingFormat = "qcow2" });
    await lab.Guest.BootAgainAsync(new Dictionary<string, string> { [data] = revert });
    await lab.ShAsync("mkdir -p /data && mount /dev/vdb /data");
    // The document's init_test.sh found "which snapshot is this" from the newest tag file.
    newestTags[k] = (await lab.ShAsync("ls /data | grep '^TAG_aio_vdb_' | sort -t_ -k4 -n | tail -1")).Trim();
    var depth = (await lab.Block.QueryChainAsync(data)).Count;
    foreach (var job in jobs)
    {
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
}), "fio per snapshot and job"));

Series PerJob(string job, Func<FioIo, double> value) =>
    new(job, runs.Where(r => r.Job == job).OrderBy(r => r.Depth).Select(r => (double)r.Depth).ToList(),
             runs.Where(r => r.Job == job).OrderBy(r => r.Depth).Select(r => value(r.Io)).ToList());
display(Figures.Lines("IOPS against chain depth", "layers in the data disk's chain", "IOPS", jobs.Select(j => PerJob(j, io => io.Iops))));
display(Figures.Lines("p99 completion latency against chain depth", "layers in the data disk's chain", "p99 latency (ms)",
    jobs.Select(j => PerJob(j, io => (io.P99Latency ?? io.MeanLatency).TotalMilliseconds))));

// ## What each layer holds
//
// Allocated bytes per layer (`qemu-img info`'s disk size): the churn of each round lands in its own overlay.

var sizes = new List<(string Layer, double MiB)>();
foreach (var layer in layers)
    sizes.Add((Path.GetFileNameWithoutExtension(layer), ((await QemuImg.InfoAsync(layer, forceShare: true)).ActualSize ?? 0) / 1048576.0));
display(Figures.Columns("Allocated size of each layer of the data disk", "MiB on the host", sizes.Select(s => s.Layer).ToList(),
    [("allocated", sizes.Select(s => s.MiB).ToList())]));

// ## Findings
//
// Each trend compares the deepest chain with the shallowest (k = 0: the blank base and one overlay). Under TCG
// the guest's CPU is emulated, so the ratios, not the values, are what a researcher can carry to KVM.

double At(string job, bool deepest) => (deepest ? runs.Where(r => r.Job == job).MaxBy(r => r.Depth) : runs.Where(r => r.Job == job).MinBy(r => r.Depth)).Io.Iops;
foreach (var job in jobs)
{
    var shallow = At(job, false);
    var deep = At(job, true);
    lab.Findings.Note($"{job} IOPS, deepest chain vs shallowest ({Snapshots + 2} vs 2 layers)",
        $"{deep:0} vs {shallow:0} IOPS: {deep / shallow:0.00}x");
}
var randRead = runs.Where(r => r.Job == "randread").OrderBy(r => r.Depth).ToList();
var falls = randRead[^1].Io.Iops < randRead[0].Io.Iops;
lab.Findings.Note("Random-read IOPS fall as the chain grows deeper", falls
    ? $"yes: {randRead[^1].Io.Iops:0} at {randRead[^1].Depth} layers vs {randRead[0].Io.Iops:0} at {randRead[0].Depth} ({(1 - randRead[^1].Io.Iops / randRead[0].Io.Iops) * 100:0}% lower)"
    : $"no: {randRead[^1].Io.Iops:0} at {randRead[^1].Depth} layers vs {randRead[0].Io.Iops:0} at {randRead[0].Depth}: fio's file is written fresh in the top layer, so its reads rarely go down the chain");
lab.Findings.Check("Every fio job did IO at every depth", runs.All(r => r.Io.Ran), $"{runs.Count(r => r.Io.Ran)} of {runs.Count} runs did IO");
var wrongTags = newestTags.Where(t => t.Value != (t.Key == 0 ? "" : $"TAG_aio_vdb_{t.Key}")).ToList();
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
