using System.Diagnostics;
using LabKernel.GuestAgent;
using LabKernel.Guests;

namespace LabBench;

/// <summary>Boot-to-agent (lean vs systemd), QMP round trip, guest-exec round trip.</summary>
internal static class GuestBench
{
    public static async Task RunAsync(TextWriter output)
    {
        output.WriteLine("== guest: boot to agent, QMP and guest-exec round trips ==");
        var image = await GuestImageBuilder.EnsureAsync();
        var boots = new Dictionary<GuestProfile, List<double>> { [GuestProfile.Lean] = [], [GuestProfile.Systemd] = [] };
        // Interleave the profiles so machine load affects both alike.
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("LAB_BENCH_BOOTS"), out var b) ? b : 5;
        for (var i = 0; i < rounds; i++)
        {
            foreach (var profile in boots.Keys)
            {
                await using var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { Profile = profile, Name = $"bench-{profile}".ToLowerInvariant() });
                boots[profile].Add(guest.Machine.BootToAgent!.Value.TotalSeconds);
            }
        }
        var lean = Stats.Median(boots[GuestProfile.Lean]);
        var systemd = Stats.Median(boots[GuestProfile.Systemd]);
        output.WriteLine($"boot to agent, lean     (median of {rounds}): {lean,7:0.00} s   [{string.Join(", ", boots[GuestProfile.Lean].Select(x => x.ToString("0.00")))}]");
        output.WriteLine($"boot to agent, systemd  (median of {rounds}): {systemd,7:0.00} s   [{string.Join(", ", boots[GuestProfile.Systemd].Select(x => x.ToString("0.00")))}]");
        output.WriteLine($"  systemd / lean: {systemd / lean:0.0}x; lean goal < 10 s: {(lean < 10 ? "met" : "NOT met")}");

        await using (var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { Name = "bench-rt" }))
        {
            var qmp = guest.Machine.Qmp;
            for (var i = 0; i < 50; i++)
            {
                await qmp.ExecuteAsync("query-status"); // warm-up
            }
            var qmpTimes = new List<double>();
            for (var i = 0; i < 1000; i++)
            {
                var sw = Stopwatch.StartNew();
                await qmp.ExecuteAsync("query-status");
                qmpTimes.Add(sw.Elapsed.TotalMilliseconds);
            }
            var agent = guest.Machine.Agent;
            await agent.ExecAsync(["true"]);
            var execTimes = new List<double>();
            for (var i = 0; i < 50; i++)
            {
                var sw = Stopwatch.StartNew();
                await agent.ExecAsync(["true"], new GuestExecOptions { Check = true });
                execTimes.Add(sw.Elapsed.TotalMilliseconds);
            }
            var pingTimes = new List<double>();
            for (var i = 0; i < 50; i++)
            {
                var sw = Stopwatch.StartNew();
                await agent.PingAsync();
                pingTimes.Add(sw.Elapsed.TotalMilliseconds);
            }
            var ssh = guest.Machine.Ssh!;
            await ssh.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
            var sshTimes = new List<double>();
            for (var i = 0; i < 10; i++)
            {
                var sw = Stopwatch.StartNew();
                await ssh.ExecAsync(["true"], new GuestExecOptions { Check = true });
                sshTimes.Add(sw.Elapsed.TotalMilliseconds);
            }
            output.WriteLine($"QMP query-status round trip (median of 1000): {Stats.Median(qmpTimes),8:0.000} ms  (p99 {Stats.Percentile(qmpTimes, 99):0.000} ms)");
            output.WriteLine($"guest-ping round trip        (median of 50):   {Stats.Median(pingTimes),8:0.000} ms");
            output.WriteLine($"guest-exec `true` round trip (median of 50):   {Stats.Median(execTimes),8:0.000} ms  ({Stats.Median(execTimes) / Stats.Median(pingTimes):0.0}x a ping)");
            output.WriteLine($"ssh `true` round trip        (median of 10):   {Stats.Median(sshTimes),8:0.000} ms  ({Stats.Median(sshTimes) / Stats.Median(execTimes):0.0}x guest-exec; SSH.NET, {ssh.ConnectionsOpened} connection reused)");
        }
        output.WriteLine($"(accelerator: tcg/kvm as `lab doctor` reports; image {image.Directory})");
    }
}
