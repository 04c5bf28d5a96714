using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Machines;

namespace LabBench;

/// <summary>
/// Block-layer figures, side by side in one run:
/// 1. a live external snapshot through the lab vs a raw QMP <c>transaction</c> on the same machine (ratio);
/// 2. the longest stall a guest sequence writer sees around a live snapshot vs its median write interval;
/// 3. mirror throughput of a 1 GiB image vs <c>qemu-img convert</c> of the same image (ratio).
/// </summary>
public static class BlockBench
{
    private const long M = 1024 * 1024;

    public static async Task RunAsync(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var folder = Path.Combine(Path.GetTempPath(), "labbench-block-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(folder);
        try
        {
            output.WriteLine("== block ==");
            await SnapshotOverheadAsync(folder, output);
            await WriterStallAsync(folder, output);
            await MirrorThroughputAsync(folder, output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Task<QemuMachine> StartFirmwareAsync(string disk) => QemuMachine.StartAsync(new MachineOptions
    {
        Name = "blockbench",
        Drives = [new DriveSpec(disk, "disk0")],
        GuestAgent = false,
        Network = false,
        Accelerator = new AcceleratorChoice("tcg", "no guest needed"),
        MemoryMiB = 128,
    });

    private static async Task SnapshotOverheadAsync(string folder, TextWriter output)
    {
        // One machine, several disks: each disk gets one lab snapshot and one raw one (order alternating), so
        // chains stay short (2-3 layers) as in real use and both paths see the same machine.
        const int disks = 24;
        var drives = new List<DriveSpec>();
        for (var d = 0; d < disks; d++)
        {
            var file = Path.Combine(folder, $"snap{d}.qcow2");
            await QemuImg.Local.CreateAsync(file, "qcow2", 64 * M);
            drives.Add(new DriveSpec(file, $"d{d}"));
        }
        await using var machine = await QemuMachine.StartAsync(new MachineOptions
        {
            Name = "blockbench",
            Drives = drives,
            GuestAgent = false,
            Network = false,
            Accelerator = new AcceleratorChoice("tcg", "no guest needed"),
            MemoryMiB = 128,
        });
        var block = machine.Block();
        var lab = new List<double>();
        var raw = new List<double>();
        var journal = new LabJournal();
        using var scope = LabJournal.BeginScope(journal);
        // Warm up both paths (JIT, first file creation) on the first disk.
        await block.SnapshotAsync("d0", Path.Combine(folder, "warm-lab.qcow2"));
        await RawSnapshotAsync(machine, (await block.QueryChainAsync("d0")).Active.NodeName, Path.Combine(folder, "warm-raw.qcow2"), "warm-raw");
        for (var d = 1; d < disks; d++)
        {
            var disk = $"d{d}";
            // Both paths start from a known chain: the raw path is handed the node name, the lab uses the view
            // this look-up leaves behind. Order alternates per disk.
            var root = (await block.QueryChainAsync(disk)).Active.NodeName;
            if (d % 2 == 0)
            {
                lab.Add(await TimeAsync(async () => root = (await block.SnapshotAsync(disk, Path.Combine(folder, $"lab-{d}.qcow2"))).Active.NodeName));
                raw.Add(await TimeAsync(() => RawSnapshotAsync(machine, root, Path.Combine(folder, $"raw-{d}.qcow2"), $"raw-{d}")));
            }
            else
            {
                raw.Add(await TimeAsync(() => RawSnapshotAsync(machine, root, Path.Combine(folder, $"raw-{d}.qcow2"), $"raw-{d}")));
                // The lab's view is now stale (the raw snapshot changed the disk behind its back): look it up again,
                // outside the timing, as a lab user who only uses the lab would never need to.
                await block.QueryChainAsync(disk);
                lab.Add(await TimeAsync(() => block.SnapshotAsync(disk, Path.Combine(folder, $"lab-{d}.qcow2"))));
            }
        }
        var ml = Median(lab);
        var mr = Median(raw);
        // The transaction's own time swings with host I/O (qcow2 creation fsyncs); the journal separates the lab's
        // own cost: each "block snapshot" entry minus the QMP transaction it issued.
        var entries = journal.Entries;
        var own = new List<double>();
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries[i].Channel == "block" && entries[i].Command.StartsWith("snapshot ", StringComparison.Ordinal) && i > 0
                && entries[i - 1].Channel == "qmp" && entries[i - 1].Command.Contains("\"transaction\"", StringComparison.Ordinal))
            {
                own.Add((entries[i].Duration - entries[i - 1].Duration).TotalMilliseconds);
            }
        }
        var mo = own.Count == 0 ? double.NaN : Median(own);
        output.WriteLine(Inv($"snapshot: lab SnapshotAsync (returns the new chain) median {ml:0.00} ms vs raw QMP transaction {mr:0.00} ms, {lab.Count} each on one machine -> ratio {ml / mr:0.00}; lab's own cost around its transaction (journal) median {mo:0.000} ms = {mo / mr:P1} of a raw transaction"));
    }

    private static Task RawSnapshotAsync(QemuMachine machine, string node, string file, string newNode) =>
        machine.Qmp.ExecuteAsync("transaction", new JsonObject
        {
            ["actions"] = new JsonArray(new JsonObject
            {
                ["type"] = "blockdev-snapshot-sync",
                ["data"] = new JsonObject
                {
                    ["node-name"] = node,
                    ["snapshot-file"] = file,
                    ["snapshot-node-name"] = newNode,
                    ["format"] = "qcow2",
                    ["mode"] = "absolute-paths",
                },
            }),
        });

    private static async Task WriterStallAsync(string folder, TextWriter output)
    {
        const int blocks = 150;
        var data = Path.Combine(folder, "writer-data.qcow2");
        await QemuImg.Local.CreateAsync(data, "qcow2", 48 * M);
        await using var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions
        {
            WorkFolder = Path.Combine(folder, "guest"),
            ExtraDrives = [new DriveSpec(data, "data0")],
            Name = "blockbench-guest",
        });
        var agent = guest.Machine.Agent;
        var device = await DeviceSequenceWriter.FindDeviceBySizeAsync(agent, 48 * M);
        var writer = DeviceSequenceWriter.RunAsync(agent, device, blocks);
        using (var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50)))
        {
            while (!writer.IsCompleted && await WriteOperationsAsync(guest.Machine, "data0") < 40)
            {
                await timer.WaitForNextTickAsync();
            }
        }
        // Map host time to the guest clock (guest-get-time, midpoint of the round trip) to find the write
        // interval that spans the snapshot.
        var (offsetNs, uncertaintyNs) = await GuestClockOffsetAsync(guest.Machine);
        var hostStart = NowNs();
        var sw = Stopwatch.StartNew();
        await guest.Machine.Block().SnapshotAsync("data0", Path.Combine(folder, "writer-snap.qcow2"));
        var snapMs = sw.Elapsed.TotalMilliseconds;
        var hostEnd = NowNs();
        var result = await writer;
        var longest = result.LongestInterval.TotalMilliseconds;
        var median = result.MedianInterval.TotalMilliseconds;
        var ts = result.TimestampsNs;
        var gStart = hostStart + offsetNs - uncertaintyNs;
        var gEnd = hostEnd + offsetNs + uncertaintyNs;
        var around = 0.0;
        for (var i = 1; i < ts.Count; i++)
        {
            if (ts[i] >= gStart && ts[i - 1] <= gEnd)
            {
                around = Math.Max(around, (ts[i] - ts[i - 1]) / 1e6);
            }
        }
        output.WriteLine(Inv($"writer stall: write interval spanning the snapshot {around:0.0} ms vs median {median:0.0} ms ({around / median:0.00}x); longest of the run {longest:0.0} ms ({longest / median:0.00}x); {result.Blocks} O_DIRECT|O_DSYNC 4 KiB writes by a shell dd loop in a TCG guest; the snapshot call took {snapMs:0.0} ms; guest clock offset known to ±{uncertaintyNs / 1e6:0.0} ms"));
    }

    private static long NowNs() => (TimeProvider.System.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private static async Task<(long OffsetNs, long UncertaintyNs)> GuestClockOffsetAsync(QemuMachine machine)
    {
        var best = (Offset: 0L, Half: long.MaxValue);
        for (var i = 0; i < 5; i++)
        {
            var t0 = NowNs();
            var guestNs = (await machine.Agent.ExecuteAsync("guest-get-time"))!.GetValue<long>();
            var t1 = NowNs();
            var half = (t1 - t0) / 2;
            if (half < best.Half)
            {
                best = (guestNs - (t0 + half), half);
            }
        }
        return best;
    }

    private static async Task<long> WriteOperationsAsync(QemuMachine machine, string disk)
    {
        var stats = await machine.Qmp.ExecuteAsync("query-blockstats") as JsonArray ?? [];
        var entry = stats.OfType<JsonObject>().FirstOrDefault(s => (s["qdev"]?.GetValue<string>() ?? "").Contains($"/{disk}-dev/", StringComparison.Ordinal));
        return entry?["stats"]?["wr_operations"]?.GetValue<long>() ?? 0;
    }

    private static async Task MirrorThroughputAsync(string folder, TextWriter output)
    {
        const long size = 1024 * M;
        var source = Path.Combine(folder, "mirror-src.qcow2");
        await QemuImg.Local.CreateAsync(source, "qcow2", size);
        await QemuIo.WritePatternAsync(source, 0, size, 0x5a);
        TimeSpan mirror;
        await using (var machine = await StartFirmwareAsync(source))
        {
            var sw = Stopwatch.StartNew();
            await using var job = await machine.Block().StartMirrorAsync("disk0", new MirrorTarget.NewFile(Path.Combine(folder, "mirror-dst.qcow2")), new MirrorOptions { Sync = MirrorSync.Full });
            await job.WaitForReadyAsync(TimeSpan.FromMinutes(10));
            mirror = sw.Elapsed;
            await job.CancelAsync();
            await job.WaitAsync(TimeSpan.FromMinutes(2));
        }
        var convertSw = Stopwatch.StartNew();
        await QemuImg.Local.ConvertAsync(source, Path.Combine(folder, "convert-dst.qcow2"), "qcow2");
        var convert = convertSw.Elapsed;
        var mirrorRate = size / M / mirror.TotalSeconds;
        var convertRate = size / M / convert.TotalSeconds;
        output.WriteLine(Inv($"mirror 1 GiB: blockdev mirror to READY {mirror.TotalSeconds:0.00} s ({mirrorRate:0} MiB/s) vs qemu-img convert {convert.TotalSeconds:0.00} s ({convertRate:0} MiB/s) -> mirror/convert throughput ratio {mirrorRate / convertRate:0.00}"));
    }

    private static async Task<double> TimeAsync(Func<Task> action)
    {
        var sw = Stopwatch.StartNew();
        await action();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s[s.Length / 2];
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
