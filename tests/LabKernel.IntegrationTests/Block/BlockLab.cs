using LabKernel.Jobs;
using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Machines;

namespace LabKernel.IntegrationTests.Block;

/// <summary>
/// A unique temp folder per test with helpers in the style of qemu-iotests: build chains offline with qemu-io
/// patterns, start a QEMU without a guest (it sits in firmware), write through HMP qemu-io, read back with
/// force-share after QEMU exits. Disposing stops every QEMU it started and removes the folder.
/// </summary>
public sealed class BlockLab : IAsyncDisposable
{
    public const long Size = 64L * 1024 * 1024;
    public const long M = 1024 * 1024;
    private readonly List<QemuMachine> _machines = [];

    public BlockLab()
    {
        Folder = Path.Combine(Path.GetTempPath(), "labkernel-block-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string PathOf(string name) => Path.Combine(Folder, name);

    public static readonly AcceleratorChoice Tcg = new("tcg", "block tests need no guest");

    /// <summary>base.qcow2 (0xaa at [0,1M)) &lt;- mid.qcow2 (0xbb at [1M,2M)) &lt;- top.qcow2 (0xcc at [2M,3M)).</summary>
    public async Task<string> ThreeLayersAsync(string prefix = "")
    {
        var b = PathOf(prefix + "base.qcow2");
        var m = PathOf(prefix + "mid.qcow2");
        var t = PathOf(prefix + "top.qcow2");
        await QemuImg.Local.CreateAsync(b, "qcow2", Size);
        await QemuIo.WritePatternAsync(b, 0, M, 0xaa);
        await QemuImg.Local.CreateAsync(m, "qcow2", null, new CreateOptions { BackingFile = b, BackingFormat = "qcow2" });
        await QemuIo.WritePatternAsync(m, M, M, 0xbb);
        await QemuImg.Local.CreateAsync(t, "qcow2", null, new CreateOptions { BackingFile = m, BackingFormat = "qcow2" });
        await QemuIo.WritePatternAsync(t, 2 * M, M, 0xcc);
        return t;
    }

    public async Task<QemuMachine> StartAsync(params DriveSpec[] drives)
    {
        var machine = await QemuMachine.StartAsync(new MachineOptions
        {
            Name = "blocktest",
            Drives = drives,
            GuestAgent = false,
            Network = false,
            Accelerator = Tcg,
            MemoryMiB = 128,
            // Lets HMP qemu-io write next to the virtio-blk device (the device otherwise refuses to share writes).
            ExtraArguments = ["-global", "virtio-blk-device.share-rw=on"],
        });
        _machines.Add(machine);
        return machine;
    }

    public Task<QemuMachine> StartAsync(string file) => StartAsync(new DriveSpec(file, "disk0"));

    /// <summary>Tracks a machine started elsewhere (a revert or restore) so it is disposed too.</summary>
    public QemuMachine Track(QemuMachine machine)
    {
        _machines.Add(machine);
        return machine;
    }

    /// <summary>
    /// HMP <c>qemu-io NODE "write -P PATTERN OFFSET LEN"</c> on the disk's current active node (looked up live,
    /// so it follows the disk across snapshots and pivots).
    /// </summary>
    public static async Task WriteLiveAsync(QemuMachine machine, string disk, long offset, long length, byte pattern)
    {
        var node = (await machine.Block().QueryChainAsync(disk)).Active.NodeName;
        var output = await machine.Qmp.HumanMonitorCommandAsync($"qemu-io {node} \"write -P 0x{pattern:x2} {offset} {length}\"");
        // HMP qemu-io prints its report to QEMU's stdout, so only errors show up in the reply.
        Assert.DoesNotContain("rror", output);
        Assert.DoesNotContain("fail", output, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Waits until <paramref name="job"/> has copied part of its data but not all, sampling its progress (events come
    /// only at status changes: a mirror's next one is READY, when the copy is whole), within a minute. Returns that sample.
    /// </summary>
    public static async Task<BlockJobProgress> WaitPartWayAsync(BlockJob job)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await foreach (var p in job.SampleEveryAsync(TimeSpan.FromMilliseconds(100), limit.Token))
        {
            if (p.Offset > 0 && p.Offset < p.Length)
            {
                return p;
            }
        }
        Assert.Fail($"{job.Type} job {job.Id} never seen part-way (last: {job.Last})");
        return job.Last;
    }

    public static async Task AssertPatternAsync(string image, long offset, long length, byte pattern)
    {
        var check = await QemuIo.VerifyPatternAsync(image, offset, length, pattern);
        Assert.True(check.Matches, $"{Path.GetFileName(image)} [{offset},{offset + length}) != 0x{pattern:x2}: {check.Message}");
    }

    /// <summary>qemu-img check on every qcow2 file in the folder: all clean.</summary>
    public async Task AssertAllCleanAsync()
    {
        foreach (var f in Directory.GetFiles(Folder, "*.qcow2"))
        {
            var r = await QemuImg.Local.CheckAsync(f);
            Assert.True(r.IsClean, $"{Path.GetFileName(f)}: {r.Summary}");
        }
    }

    /// <summary>A fingerprint of a file (length, mtime, content hash) to show nothing changed on disk.</summary>
    public static string Fingerprint(string file)
    {
        var fi = new FileInfo(file);
        using var s = File.OpenRead(file);
        return $"{fi.Length}/{fi.LastWriteTimeUtc.Ticks}/{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(s))}";
    }

    public async Task StopAllAsync()
    {
        foreach (var m in _machines)
        {
            await m.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAllAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
        // A QEMU still running after the test would hold its images and skew the next test: fail, in every build.
        // (None started is fine: a test that started no QEMU left none running.)
        Assert.False(_machines.Any(m => !m.HasExited), "a QEMU this test started is still running");
    }
}
