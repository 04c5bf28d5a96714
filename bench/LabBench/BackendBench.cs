using System.Diagnostics;
using LabKernel.Backends;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Journal;

namespace LabBench;

/// <summary>
/// The two backends side by side on the same embedded guest: boot to agent, a QMP round trip (own socket vs
/// libvirt's monitor passthrough), a guest-exec round trip (agent socket vs libvirt), and a live snapshot
/// (QMP transaction vs virDomainSnapshotCreateXML). Ratios are libvirt / QEMU directly.
/// </summary>
internal static class BackendBench
{
    public static async Task RunAsync(TextWriter output)
    {
        output.WriteLine("== backends: the embedded guest on QEMU directly vs as a libvirt domain ==");
        var results = new Dictionary<string, Dictionary<string, List<double>>>();
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("LAB_BENCH_BACKEND_ROUNDS"), out var r) ? r : 3;
        // Interleave the backends so machine load affects both alike.
        for (var round = 0; round < rounds; round++)
        {
            foreach (var backend in new[] { "qemu", "libvirt" })
            {
                var folder = Directory.CreateTempSubdirectory($"bench-{backend}-").FullName;
                try
                {
                    using var quiet = LabJournal.BeginScope(new LabJournal());
                    await using var guest = await LabGuests.StartAsync(new LabGuestOptions
                    {
                        Backend = backend == "qemu" ? LabKernel.GuestBackend.Qemu : LabKernel.GuestBackend.Libvirt, Name = "bench", WorkFolder = folder, Overlays = [Path.Combine(folder, "overlay1.qcow2")],
                    });
                    var m = results.TryGetValue(backend, out var x) ? x : results[backend] = [];
                    Add(m, "boot to agent (s)", guest.BootToAgent!.Value.TotalSeconds);
                    var block = await guest.OpenMonitorAsync();
                    for (var i = 0; i < 20; i++)
                    {
                        await block.Qmp.ExecuteAsync("query-status");
                    }
                    var qmp = new List<double>();
                    for (var i = 0; i < 300; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        await block.Qmp.ExecuteAsync("query-status");
                        qmp.Add(sw.Elapsed.TotalMilliseconds);
                    }
                    Add(m, "QMP query-status (ms)", Stats.Median(qmp));
                    await guest.Agent.ExecAsync(["true"]);
                    var exec = new List<double>();
                    for (var i = 0; i < 30; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        await guest.Agent.ExecAsync(["true"], new GuestExecOptions { Check = true });
                        exec.Add(sw.Elapsed.TotalMilliseconds);
                    }
                    Add(m, "guest-exec true (ms)", Stats.Median(exec));
                    var snap = new List<double>();
                    for (var i = 0; i < 3; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        await guest.Block.SnapshotAsync(guest.Disk, Path.Combine(folder, $"snap{i}.qcow2"));
                        snap.Add(sw.Elapsed.TotalMilliseconds);
                    }
                    Add(m, "live snapshot (ms)", Stats.Median(snap));
                    if (guest is LibvirtLabGuest lv)
                    {
                        // libvirt's own save/restore (virsh save/restore), against this run's cold boot of the same domain.
                        var state = Path.Combine(folder, "domain.state");
                        Add(m, "libvirt save (s)", (await lv.Domain.SaveAsync(state)).TotalSeconds);
                        Add(m, "state file (MiB)", new FileInfo(state).Length / 1048576.0);
                        Add(m, "libvirt restore to agent (s)", (await lv.Domain.RestoreAsync(state)).TotalSeconds);
                    }
                }
                finally
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
        }
        output.WriteLine($"{"median of " + rounds + " rounds",-26} {"qemu",10} {"libvirt",10} {"libvirt/qemu",13}");
        foreach (var key in results["qemu"].Keys)
        {
            var q = Stats.Median(results["qemu"][key]);
            var l = Stats.Median(results["libvirt"][key]);
            output.WriteLine($"{key,-26} {q,10:0.00} {l,10:0.00} {l / q,12:0.00}x");
        }
        var lvm = results["libvirt"];
        output.WriteLine($"libvirt save {Stats.Median(lvm["libvirt save (s)"]):0.00} s ({Stats.Median(lvm["state file (MiB)"]):0} MiB), restore to agent {Stats.Median(lvm["libvirt restore to agent (s)"]):0.00} s"
            + $" vs its boot to agent {Stats.Median(lvm["boot to agent (s)"]):0.00} s: {Stats.Median(lvm["libvirt restore to agent (s)"]) / Stats.Median(lvm["boot to agent (s)"]):0.00}x (QEMU's warm start: `bench warm`)");
    }

    private static void Add(Dictionary<string, List<double>> m, string key, double value)
    {
        if (!m.TryGetValue(key, out var list))
        {
            m[key] = list = [];
        }
        list.Add(value);
    }
}
