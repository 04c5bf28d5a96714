using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Libvirt;
using LabKernel.Processes;
using LabKernel.Tests.Runner;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// Notebooks on a researcher's domain on another hypervisor (<see cref="SecondHost"/>): libvirt drives it over
/// <c>qemu+ssh://</c>, and everything the lab does to its files (qemu-img, overlays, offline reads, SHA-256) runs on
/// that host over SSH. A file operation done here by mistake fails: the host's folder is empty and read-only here.
/// </summary>
[Collection(SecondHostCollection.Name)]
public sealed class SecondHostTests(SecondHost host, ITestOutputHelper output) : IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        try
        {
            using var _ = await connection.LookupDomainAsync(host.DomainName);
        }
        catch (LibvirtDomainNotFoundException)
        {
            await host.DefineUsersDomainAsync();
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Given_the_second_host_Then_its_image_folder_is_empty_and_read_only_here_and_holds_the_researchers_images_there()
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(host.Folder));
        var here = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(host.Folder, "written-here"), "x"));
        output.WriteLine($"here: {here.Message}");
        foreach (var image in host.Images)
        {
            Assert.False(File.Exists(image), $"{image} is visible here");
            Assert.True(await host.Shell.FileExistsAsync(image), $"{image} is not on the second host");
        }
        // libvirt there has the domain; libvirt here does not.
        await using var local = await LibvirtConnection.OpenAsync();
        await Assert.ThrowsAsync<LibvirtDomainNotFoundException>(() => local.LookupDomainAsync(host.DomainName));
    }

    private static readonly (string Notebook, string[] Parameters)[] Runs =
    [
        // Writers with room to spare, as UserDisksTests': the snapshot's round trips over SSH take longer than here.
        ("01-live-snapshot-integrity", ["Count", "1000000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze"]),
        ("03-drive-mirror", ["FileOps", "10", "WriteMiB", "8", "OutageSeconds", "3"]),
        ("06-snapshot-kinds", ["WriterLines", "2000000"]),
    ];

    [Fact]
    public async Task Given_a_running_domain_on_the_second_host_When_notebooks_01_03_and_06_run_on_it_Then_their_verdicts_hold_its_images_keep_their_bytes_and_the_kept_chains_check_clean_there()
    {
        await EnsureRunningAsync();
        // The guest writes root.qcow2 itself while it runs on it; every other image of the domain it never writes.
        var untouched = host.Images.Where(i => !i.EndsWith("/root.qcow2", StringComparison.Ordinal)).ToList();
        var before = await host.HashImagesAsync();
        var hostFolder = Path.Combine(host.Folder, "lab");
        foreach (var (notebook, parameters) in Runs)
        {
            using var run = await NotebookRun.RunAsync(notebook, [.. parameters, "Backend", "libvirt", "Domain", host.DomainName, "LibvirtUri", host.Uri, "HostFolder", hostFolder]);
            Assert.True(run.ExitCode == 0, $"{notebook}: {run.FirstError()}");
            Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" || f.Verdict == "refuted" && f.Claim.StartsWith("Reverting the WithMemory", StringComparison.Ordinal),
                $"{notebook}: {f.Claim}: {f.Observed} ({f.Verdict})"));
            if (notebook.StartsWith("06", StringComparison.Ordinal))
            {
                // Pings over SSH are as long as a small guest's memory-snapshot pause: shown, not judged, there.
                Assert.Equal("info", run.Findings.Single(f => f.Claim == "A snapshot with memory pauses the guest while memory is saved (3)").Verdict);
            }
            var handBack = run.Findings.Single(f => f.Claim == "Your domain's images (vda, vdb) were not written between take-over and hand-back");
            Assert.Equal("confirmed", handBack.Verdict);
            output.WriteLine($"{notebook}: {run.Findings.Count} findings; {handBack.Observed}");
            var after = await host.HashImagesAsync();
            foreach (var image in untouched)
            {
                Assert.True(before[image] == after[image], $"{notebook} changed {Path.GetFileName(image)} on the second host");
            }
            // Handed back on its own images, running, with no snapshot record of the lab's.
            await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
            using var domain = await connection.LookupDomainAsync(host.DomainName);
            Assert.Equal(DomainState.Running, await domain.GetStateAsync());
            var disks = await domain.ListDisksAsync(inactive: true);
            Assert.Equal([host.Images[0], host.Images[3]], disks.Select(d => d.Source));
            Assert.Empty(await domain.Snapshots.ListAsync());
            // The run kept its images (the tests run with KeepArtifacts) in a folder of its own there, each one
            // qemu-img check accepts there; nothing appeared here.
            var kept = (await host.RunAsync($"find {ShellQuote.Quote(hostFolder)} -name '*.qcow2'")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(kept);
            foreach (var image in kept)
            {
                Assert.True((await LabKernel.Images.QemuImg.On(host.Shell).CheckAsync(image)).IsClean, $"{notebook}: {image} on the second host");
            }
            Assert.Empty(Directory.EnumerateFileSystemEntries(host.Folder));
            await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
        }
    }

    [Fact]
    public async Task Given_the_second_host_When_lab_doctor_checks_it_Then_every_program_is_found_there_and_one_hidden_there_is_named_with_its_package()
    {
        var ok = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "doctor", "--uri", host.Uri);
        output.WriteLine(ok.StandardOutput);
        Assert.Contains("ok   host files", ok.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"ok\s+debugfs on host\s+present", ok.StandardOutput);
        // debugfs made unrunnable on the second host only (an empty, non-executable file bound over it in its namespace).
        var blank = Path.Combine(host.Folder, "no-debugfs");
        await host.RunAsync($"touch {blank} && chmod 0644 {blank} && mount --bind {blank} /usr/sbin/debugfs");
        try
        {
            Assert.True(File.Exists("/usr/sbin/debugfs") && new FileInfo("/usr/sbin/debugfs").Length > 0, "debugfs must stay usable on this machine");
            var missing = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "doctor", "--uri", host.Uri);
            output.WriteLine(missing.StandardOutput + missing.StandardError);
            Assert.Equal(1, missing.ExitCode);
            Assert.Matches(@"FAIL\s+debugfs on host\s+missing on root@127\.0\.0\.1:\d+, needed for reading files out of a layer offline: install e2fsprogs there", missing.StandardOutput);
            Assert.Contains("missing debugfs on host", missing.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            await host.RunAsync($"umount /usr/sbin/debugfs; rm -f {blank}");
        }
    }

    /// <summary>
    /// `lab sweep` over two hosts at once: this machine (the embedded guest as a lab-made libvirt domain) and the second
    /// host (the researcher's domain there, over SSH), one run slot each, notebook 01 over two quiesce modes.
    /// </summary>
    [Fact]
    public async Task Given_notebook_01_swept_over_two_quiesce_modes_on_this_machine_and_the_second_host_Then_each_host_runs_one_and_both_confirm_every_claim()
    {
        await EnsureRunningAsync();
        using var scratch = RunnerTestSupport.TempDir("sweep-2hosts");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Count: [400000]\nSnapshotAfterLines: [40000]\nQuiesce: [fsfreeze, sync]\n");
        var hostFolder = Path.Combine(host.Folder, "lab-sweep");
        var hosts = Path.Combine(scratch.Path, "hosts.yaml");
        await File.WriteAllTextAsync(hosts, $"- uri: qemu:///system\n  jobs: 1\n- uri: \"{host.Uri}\"\n  jobs: 1\n  domain: {host.DomainName}\n  hostFolder: {hostFolder}\n");
        var dir = Path.Combine(scratch.Path, "sweep");
        var notebook = Path.Combine(NotebookRun.RepoRoot, "notebooks", "01-live-snapshot-integrity.ipynb");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var exit = await RunnerTestSupport.Lab("sweep", notebook, "--matrix", matrix, "--hosts", hosts, "-o", dir);

        var wall = clock.Elapsed;
        var runs = RunnerTestSupport.ReadJson(Path.Combine(dir, "sweep.json"))["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.True(exit == 0, $"lab sweep exited {exit}: {string.Join(" | ", runs.Select(r => $"{r["id"]}: {r["status"]} {r["error"]}"))}");
        var results = runs.Select(r => RunnerTestSupport.ReadJson(Path.Combine(dir, r["folder"]!.GetValue<string>(), "result.json"))).ToList();
        Assert.Equal(new[] { "qemu:///system", host.Uri }.Order(), results.Select(r => r["host"]!.GetValue<string>()).Order());
        foreach (var result in results)
        {
            Assert.Equal("ok", result["status"]!.GetValue<string>());
            Assert.All(result["findings"]!.AsArray(), f => Assert.False(f!["unexpected"]!.GetValue<bool>(), $"{result["host"]}: {f["claim"]}: {f["observed"]}"));
            Assert.Equal(400000, result["measurements"]!["lines_in_new_top"]!.GetValue<double>());
        }
        // On the second host the researcher's images were handed back unchanged.
        var remote = results.Single(r => r["host"]!.GetValue<string>() == host.Uri);
        Assert.Contains(remote["findings"]!.AsArray(), f => f!["claim"]!.GetValue<string>().StartsWith("Your domain's images (vda, vdb) were not written", StringComparison.Ordinal) && f["verdict"]!.GetValue<string>() == "confirmed");
        var oneByOne = results.Sum(r => r["duration"]!.GetValue<double>());
        output.WriteLine($"sweep over two hosts: {wall.TotalSeconds:0} s wall; the two runs took {oneByOne:0} s together");
        await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
    }

    private async Task EnsureRunningAsync()
    {
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        using var domain = await connection.LookupDomainAsync(host.DomainName);
        if (await domain.GetStateAsync() != DomainState.Running)
        {
            await domain.StartAsync();
            await domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
        }
    }
}
