using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>Agent and QEMU monitor passthrough on the shared domain.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class PassthroughTests(LibvirtFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Agent_commands_pass_through_libvirt_and_back()
    {
        var d = fx.Domain;
        var raw = await d.Agent.CommandAsync("{\"execute\":\"guest-info\"}");
        Assert.Contains("\"version\"", raw);
        var echo = await d.Agent.ExecAsync(["/bin/echo", "through libvirt"], new GuestExecOptions { Check = true });
        Assert.Equal("through libvirt\n", echo.StandardOutput);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            await d.Agent.PingAsync();
        }
        output.WriteLine($"guest-ping through virDomainQemuAgentCommand: {sw.Elapsed.TotalMilliseconds / 10:0.0} ms each");
        // The agent's own error comes back as on the QEMU backend: the same exception type, with the agent's words.
        var bad = await Assert.ThrowsAsync<LabKernel.GuestAgent.GuestAgentErrorException>(() => d.Agent.ExecuteAsync("guest-no-such-command"));
        output.WriteLine(bad.Message);
        Assert.Equal("guest-no-such-command", bad.Command);
        Assert.Contains("has not been found", bad.Description);
        Assert.DoesNotContain('\n', bad.Message);
    }

    /// <summary>
    /// A wait for the agent that runs out says which side failed: libvirt's record of the agent's port (the guest has
    /// not opened it yet, a moment after the start) and the end of the domain's console log.
    /// </summary>
    [Fact]
    public async Task Given_a_domain_just_started_When_its_agent_is_awaited_too_briefly_Then_the_timeout_names_libvirts_channel_state_and_the_console_log()
    {
        await using var scope = await fx.ScopeAsync();
        var d = fx.Domain;
        await d.DestroyAsync();
        await d.StartAsync();
        var early = await Assert.ThrowsAsync<LabTimeoutException>(() => d.WaitForAgentAsync(TimeSpan.FromMilliseconds(200)));
        output.WriteLine(early.Message);
        Assert.Contains("QEMU guest agent is not connected; libvirt's agent channel: disconnected", early.Message);
        Assert.Contains($"console log {fx.Guest.SerialLog}: ", early.Message);
        Assert.DoesNotContain('\n', early.Message);
        // The guest itself was fine: given time, its agent answers.
        await d.WaitForAgentAsync(TimeSpan.FromMinutes(3));
        Assert.Equal("connected", DomainXml.AgentChannelAndConsole(await d.GetXmlAsync()).AgentChannel);
    }

    [Fact]
    public async Task HMP_and_QMP_pass_through_to_the_domain_monitor()
    {
        var d = fx.Domain;
        var status = await d.Monitor.HmpAsync("info status");
        Assert.Contains("running", status);
        var block = await d.Monitor.HmpAsync("info block");
        output.WriteLine(block);
        Assert.Contains(Path.GetFileName(fx.Guest.RootOverlay), block);
        var qmp = await d.Monitor.QmpAsync("{\"execute\":\"query-status\"}");
        Assert.Equal("running", qmp?["return"]?["status"]?.GetValue<string>());
        var jobs = await d.Monitor.HmpAsync("info block-jobs");
        Assert.Contains("No active jobs", jobs);
    }

    [Fact]
    public async Task A_mirror_watched_and_cancelled_through_HMP_as_in_001_copies_a_data_disk()
    {
        var d = fx.Domain;
        var src = fx.PathOf("hmp-src.qcow2");
        var mirror = fx.PathOf("hmp-mirror.qcow2");
        await QemuImg.Local.CreateAsync(src, "qcow2", 32 * 1024 * 1024);
        await QemuIo.WritePatternAsync(src, 0, 8 * 1024 * 1024, 0x5a);
        await d.AttachDiskAsync(src, "vdd");
        try
        {
            var info = await d.Monitor.HmpAsync("info block");
            var node = info.Split('\n').First(l => l.Contains(src, StringComparison.Ordinal)).Split(':')[0].Trim();
            output.WriteLine($"vdd is node {node}");
            // 001 starts the mirror with HMP drive_mirror. On a libvirt 9.0 domain (-blockdev, no drive names) HMP has
            // no way to name the job and QEMU refuses it, so the job is started with QMP drive-mirror through the
            // same passthrough; watching and cancelling stay HMP, as in 001.
            var hmp = await d.Monitor.HmpAsync($"drive_mirror -f {node} {mirror} qcow2");
            output.WriteLine($"HMP drive_mirror: {hmp.Trim()}");
            Assert.Contains("Invalid job ID", hmp, StringComparison.Ordinal);
            var qmp = await d.Monitor.QmpAsync(new System.Text.Json.Nodes.JsonObject
            {
                ["execute"] = "drive-mirror",
                ["arguments"] = new System.Text.Json.Nodes.JsonObject { ["job-id"] = "mirror001", ["device"] = node, ["target"] = mirror, ["format"] = "qcow2", ["sync"] = "full" },
            }.ToJsonString());
            Assert.NotNull(qmp?["return"]);
            // The document's own way: HMP "info block-jobs" read until the mirror is in sync, then until no job is left.
            var jobs = await Poll.UntilAsync(async _ =>
            {
                var text = await d.Monitor.HmpAsync("info block-jobs");
                return (IsInSync(text), text, text.Trim());
            }, "HMP info block-jobs to show mirror001 in sync", TimeSpan.FromMinutes(1));
            output.WriteLine(jobs.Trim());
            output.WriteLine(await d.Monitor.HmpAsync("block_job_cancel mirror001"));
            await Poll.UntilAsync(async _ =>
            {
                var text = await d.Monitor.HmpAsync("info block-jobs");
                return (text.Contains("No active jobs", StringComparison.Ordinal), text.Trim());
            }, "HMP info block-jobs to show no job after block_job_cancel", TimeSpan.FromSeconds(30));
            Assert.True((await QemuImg.Local.CompareAsync(src, mirror)).Identical);
            Assert.Equal([src], (await d.Block.QueryChainAsync("vdd")).Chain);
        }
        finally
        {
            await d.DetachDiskAsync("vdd");
        }
    }

    // "Type mirror, device X: Completed 33554432 of 33554432 bytes, speed limit 0 bytes/s"
    private static bool IsInSync(string jobs)
    {
        var m = System.Text.RegularExpressions.Regex.Match(jobs, @"Completed (\d+) of (\d+) bytes");
        return m.Success && m.Groups[1].Value == m.Groups[2].Value;
    }
}
