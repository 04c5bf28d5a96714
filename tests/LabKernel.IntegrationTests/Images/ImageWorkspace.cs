using System.Diagnostics;
using LabKernel.Images;
using LabKernel.Processes;

namespace LabKernel.IntegrationTests.Images;

/// <summary>A unique temp folder per test, removed in <see cref="Dispose"/>, with helpers to build chains.</summary>
public sealed class ImageWorkspace : IDisposable
{
    public const long Size = 4L * 1024 * 1024;
    public const int K64 = 64 * 1024;

    public ImageWorkspace()
    {
        Folder = Path.Combine(Path.GetTempPath(), "labkernel-images-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string PathOf(string name) => Path.Combine(Folder, name);

    /// <summary>
    /// base.qcow2 (0xaa at [0,64k)) &lt;- overlay1.qcow2 (0xbb at [64k,128k), relative backing name)
    /// &lt;- overlay2.qcow2 (0xcc at [128k,192k), absolute backing name). Returns the overlay2 path.
    /// </summary>
    public async Task<string> CreateThreeLayerChainAsync()
    {
        await QemuImg.Local.CreateAsync(PathOf("base.qcow2"), "qcow2", Size, new CreateOptions { ClusterSize = K64 });
        await QemuIo.WritePatternAsync(PathOf("base.qcow2"), 0, K64, 0xaa);
        await QemuImg.Local.CreateAsync(PathOf("overlay1.qcow2"), "qcow2", null, new CreateOptions { BackingFile = "base.qcow2", BackingFormat = "qcow2" });
        await QemuIo.WritePatternAsync(PathOf("overlay1.qcow2"), K64, K64, 0xbb);
        await QemuImg.Local.CreateAsync(PathOf("overlay2.qcow2"), "qcow2", null, new CreateOptions { BackingFile = PathOf("overlay1.qcow2") });
        await QemuIo.WritePatternAsync(PathOf("overlay2.qcow2"), 2 * K64, K64, 0xcc);
        return PathOf("overlay2.qcow2");
    }

    public async Task AssertPatternAsync(string image, long offset, long length, byte pattern)
    {
        var check = await QemuIo.VerifyPatternAsync(image, offset, length, pattern);
        Assert.True(check.Matches, check.Message);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder must not fail the test.
        }
    }
}

/// <summary>
/// Holds an image open for writing the way a running QEMU does, with <c>qemu-nbd --fork</c> (same block layer,
/// same locks, no guest to boot). Disposing kills that qemu-nbd by its pid.
/// </summary>
public sealed class ImageHolder : IAsyncDisposable
{
    private readonly int _pid;

    private ImageHolder(int pid) => _pid = pid;

    public static async Task<ImageHolder> HoldAsync(ImageWorkspace workspace, string image)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var socket = workspace.PathOf($"nbd-{id}.sock");
        var pidFile = workspace.PathOf($"nbd-{id}.pid");
        await ProcessRunner.RunAsync("qemu-nbd", ["-k", socket, "--pid-file=" + pidFile, "--fork", "-f", "qcow2", image],
            new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) });
        var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return new ImageHolder(pid);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var p = Process.GetProcessById(_pid);
            p.Kill();
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await p.WaitForExitAsync(limit.Token);
        }
        catch (ArgumentException)
        {
            // Already exited.
        }
    }
}
