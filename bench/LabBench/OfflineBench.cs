using System.Diagnostics;
using System.Globalization;
using LabKernel.Guests;
using LabKernel.Images;
using LabKernel.Integrity;

namespace LabBench;

/// <summary>
/// Offline reads, side by side in one run: a layer of the lab's guest (an overlay over the cached image) opened,
/// one file read and closed, through a FUSE view of a throwaway overlay against a raw copy of the whole layer,
/// alternating, 5 pairs. Wall time, and CPU time of the whole machine (from <c>/proc/stat</c>: the view's daemon is
/// not this process's child), so run it on an otherwise idle host.
/// </summary>
public static class OfflineBench
{
    private const int Pairs = 5;

    public static async Task RunAsync(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var image = GuestImageBuilder.TryGetCached() ?? throw new InvalidOperationException("no guest image: scripts/lab guest build");
        var folder = Path.Combine(Path.GetTempPath(), "labbench-offline-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(folder);
        try
        {
            output.WriteLine("== offline reads ==");
            var layer = Path.Combine(folder, "layer.qcow2");
            await QemuImg.Local.CreateAsync(layer, "qcow2", options: new CreateOptions { BackingFile = image.BaseImage, BackingFormat = "qcow2" });
            var results = new Dictionary<OfflineView, List<(double Wall, double Cpu)>> { [OfflineView.Fuse] = [], [OfflineView.Copy] = [] };
            for (var i = 0; i < Pairs; i++)
            {
                foreach (var view in i % 2 == 0 ? new[] { OfflineView.Fuse, OfflineView.Copy } : new[] { OfflineView.Copy, OfflineView.Fuse })
                {
                    var cpu0 = BusySeconds();
                    var sw = Stopwatch.StartNew();
                    await using (var reader = await OfflineLayerReader.OpenAsync(layer, folder, view: view))
                    {
                        if ((await reader.ReadFileAsync("/usr/lib/os-release")).Length == 0)
                        {
                            throw new InvalidOperationException("empty read");
                        }
                    }
                    results[view].Add((sw.Elapsed.TotalSeconds, BusySeconds() - cpu0));
                }
            }
            foreach (var (view, r) in results)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {view,-5} open + read + close: median {Stats.Median(r.Select(x => x.Wall)):0.000} s wall, {Stats.Median(r.Select(x => x.Cpu)):0.00} CPU-s (machine) over {r.Count} runs"));
            }
            var ratioWall = Stats.Median(results[OfflineView.Fuse].Select(x => x.Wall)) / Stats.Median(results[OfflineView.Copy].Select(x => x.Wall));
            var ratioCpu = Stats.Median(results[OfflineView.Fuse].Select(x => x.Cpu)) / Stats.Median(results[OfflineView.Copy].Select(x => x.Cpu));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FUSE view / raw copy: {ratioWall:0.00}x wall, {ratioCpu:0.00}x CPU"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Busy CPU time of the whole machine so far, in seconds (user + nice + system + irq + softirq of /proc/stat).</summary>
    private static double BusySeconds()
    {
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var busy = new[] { 1, 2, 3, 6, 7 }.Sum(i => long.Parse(f[i], CultureInfo.InvariantCulture));
        return busy / 100.0;
    }
}
