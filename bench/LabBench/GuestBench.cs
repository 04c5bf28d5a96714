using System.Diagnostics;
using LabKernel.GuestAgent;
using LabKernel.Guests;

namespace LabBench;

/// <summary>Boot-to-agent (lean vs systemd), QMP round trip, guest-exec round trip.</summary>
internal static class GuestBench
{
    /// <summary>
    /// Warm starts (a restore from the cached saved state) against cold boots, interleaved in one run: time to a
    /// working agent and the whole start as a caller sees it; the state's save pause and size; a restore with the
    /// state file dropped from the host's page cache.
    /// </summary>
    internal static async Task WarmAsync(TextWriter output, int rounds = 5)
    {
        // A configuration of the bench's own, so the first start saves its state (and the save is measured).
        var options = new EmbeddedGuestOptions { Name = "bench-warm", ExtraArguments = ["-smbios", "type=1,serial=lab-bench-warm"] };
        string folder;
        await using (var first = await EmbeddedGuest.StartAsync(options))
        {
            output.WriteLine($"first start of the bench's configuration: {first.Start}");
            folder = first.Start.State ?? throw new InvalidOperationException($"no state: {first.Start}");
        }
        var key = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "key.json")))!;
        var cold = new List<double>();
        var warm = new List<double>();
        var coldWall = new List<double>();
        var warmWall = new List<double>();
        var uncached = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            // Cold first in even rounds, warm first in odd ones: neither always follows the other's teardown.
            foreach (var coldNow in i % 2 == 0 ? new[] { true, false } : [false, true])
            {
                var sw = Stopwatch.StartNew();
                await using var g = await EmbeddedGuest.StartAsync(coldNow ? options with { Warm = false } : options);
                (coldNow ? coldWall : warmWall).Add(sw.Elapsed.TotalSeconds);
                (coldNow ? cold : warm).Add(coldNow || g.Start.Warm ? g.Machine.BootToAgent!.Value.TotalSeconds : double.NaN);
                output.WriteLine($"  {(coldNow ? "cold" : "warm")}: {string.Join(", ", g.Machine.StartSteps.Select(st => $"{st.Step} {st.At.TotalSeconds:0.000} s"))}");
            }
            // The state file dropped from the page cache (posix_fadvise DONTNEED through dd), then a warm start.
            await LabKernel.Processes.ProcessRunner.RunAsync("dd", [$"if={Path.Combine(folder, "state.bin")}", "iflag=nocache", "count=0", "status=none"]);
            await using (var u = await EmbeddedGuest.StartAsync(options))
            {
                uncached.Add(u.Start.Warm ? u.Machine.BootToAgent!.Value.TotalSeconds : double.NaN);
                output.WriteLine($"  uncached: {string.Join(", ", u.Machine.StartSteps.Select(st => $"{st.Step} {st.At.TotalSeconds:0.000} s"))}");
            }
        }
        string L(List<double> v) => $"[{string.Join(", ", v.Select(x => x.ToString("0.00")))}]";
        var (c0, w0) = (Stats.Median(cold), Stats.Median(warm));
        output.WriteLine($"cold boot to agent          (median of {rounds}): {c0,7:0.00} s   {L(cold)}");
        output.WriteLine($"warm start to agent         (median of {rounds}): {w0,7:0.00} s   {L(warm)}");
        output.WriteLine($"warm, state not in page cache (median of {rounds}): {Stats.Median(uncached),5:0.00} s   {L(uncached)}");
        output.WriteLine($"whole start, cold vs warm   (median of {rounds}): {Stats.Median(coldWall):0.00} s vs {Stats.Median(warmWall):0.00} s");
        output.WriteLine($"  warm / cold: {w0 / c0:0.00}x (goal at most 0.15x: {(w0 / c0 <= 0.15 ? "met" : "NOT met")}); warm goal at most 0.5 s: {(w0 <= 0.5 ? "met" : "NOT met")}");
        output.WriteLine($"state: {LabKernel.Images.SizeText.Format(key["state_bytes"]!.GetValue<long>())} for {key["key"]!["memory_mib"]} MiB of guest memory; the save paused the guest {key["paused_ms"]} ms");
        LabKernel.Host.LabPaths.TryDeleteFolder(folder);
    }

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
                await using var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { Profile = profile, Name = $"bench-{profile}".ToLowerInvariant(), Warm = false });
                boots[profile].Add(guest.Machine.BootToAgent!.Value.TotalSeconds);
            }
        }
        var lean = Stats.Median(boots[GuestProfile.Lean]);
        var systemd = Stats.Median(boots[GuestProfile.Systemd]);
        output.WriteLine($"boot to agent, lean     (median of {rounds}): {lean,7:0.00} s   [{string.Join(", ", boots[GuestProfile.Lean].Select(x => x.ToString("0.00")))}]");
        output.WriteLine($"boot to agent, systemd  (median of {rounds}): {systemd,7:0.00} s   [{string.Join(", ", boots[GuestProfile.Systemd].Select(x => x.ToString("0.00")))}]");
        output.WriteLine($"  systemd / lean: {systemd / lean:0.0}x; lean goal < 10 s: {(lean < 10 ? "met" : "NOT met")}");
        await WarmAsync(output, rounds);

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
