using LabKernel.Guests;
using LabKernel.Host;
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
    public Task InitializeAsync() => host.EnsureUsersDomainDefinedAsync();

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

    [Fact]
    public async Task Given_a_researchers_image_on_the_second_host_When_read_offline_Then_a_FUSE_view_there_gives_its_files_and_nothing_is_left_or_written()
    {
        // The image read and its backing file (root.qcow2 above it is the domain's active disk, which other tests run).
        var image = host.Images.Single(i => i.EndsWith("/root-golden.qcow2", StringComparison.Ordinal));
        var baseImage = host.Images.Single(i => i.EndsWith("/base.qcow2", StringComparison.Ordinal));
        var before = (await host.Shell.Sha256Async(image), await host.Shell.Sha256Async(baseImage));
        var scratch = Path.Combine(host.Folder, "offline-read");
        await host.Shell.CreateDirectoryAsync(scratch);
        string view;
        await using (var reader = await LabKernel.Integrity.OfflineLayerReader.OpenAsync(image, scratch, host: host.Shell, view: LabKernel.Integrity.OfflineView.Fuse))
        {
            view = reader.ViewFile;
            Assert.StartsWith(scratch + "/", view, StringComparison.Ordinal);
            Assert.False(File.Exists(view), "the view must exist only on the second host");
            Assert.Contains(view, await host.RunAsync("cat /proc/mounts"), StringComparison.Ordinal);
            Assert.Contains("bookworm", System.Text.Encoding.UTF8.GetString(await reader.ReadFileAsync("/usr/lib/os-release")), StringComparison.Ordinal);
        }
        Assert.DoesNotContain(view, await host.RunAsync("cat /proc/mounts"), StringComparison.Ordinal);
        Assert.Empty((await host.RunAsync($"ls -A {ShellQuote.Quote(scratch)}")).Trim());
        Assert.Empty((await host.RunAsync("pgrep -f '[q]emu-storage-daemon.*offline-read' || true")).Trim());
        Assert.Equal(before, (await host.Shell.Sha256Async(image), await host.Shell.Sha256Async(baseImage)));
        await host.Shell.DeleteDirectoryAsync(scratch, recursive: false);
    }

    [Fact]
    public async Task Given_the_second_host_When_lab_doctor_checks_it_Then_every_program_is_found_there_and_one_hidden_there_is_named_with_its_package()
    {
        var ok = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "doctor", "--uri", host.Uri);
        output.WriteLine(ok.StandardOutput);
        Assert.Contains("ok   host files", ok.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"ok\s+debugfs on host\s+present", ok.StandardOutput);
        Assert.Matches(@"ok\s+offline reads\s+a FUSE view on root@127\.0\.0\.1:\d+", ok.StandardOutput);
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
    /// Runs killed on the second host leave their image folders there (a killed kernel deletes nothing). `lab clean
    /// --uri` removes those nobody uses, keeps a kept one (until --all), one a process there names and one a domain's
    /// definition there names, and never touches a folder without the lab's mark; `lab doctor --uri` counts them.
    /// </summary>
    [Fact]
    public async Task Given_run_folders_left_on_the_second_host_When_lab_clean_uri_runs_Then_it_removes_only_the_labs_unused_ones_there()
    {
        var hostFolder = Path.Combine(host.Folder, "lab-clean");
        var local = Directory.CreateTempSubdirectory("lab-clean-remote-").FullName;
        async Task<LabKernel.Experiments.ExperimentRun> MakeRunAsync(string name, bool keep)
        {
            var run = await LabKernel.Experiments.ExperimentRun.CreateAsync(name, host.Shell, keep, local, hostFolder);
            await LabKernel.Images.QemuImg.On(host.Shell).CreateAsync(run.NewFile("overlay1", "overlay1.qcow2"), "qcow2", 16L << 20);
            return run;
        }
        var abandoned = await MakeRunAsync("abandoned", keep: false);
        var kept = await MakeRunAsync("kept", keep: true);
        await kept.CleanUpAsync();
        var busy = await MakeRunAsync("busy", keep: false);
        var named = await MakeRunAsync("named", keep: false);
        var foreign = Path.Combine(hostFolder, "someone-elses");
        await host.RunAsync($"mkdir -p {foreign} && echo precious > {foreign}/notes.txt");
        // A process there holding a file of one run open; a shut-off domain there whose definition names another's.
        var image = await GuestImageBuilder.EnsureAsync();
        var xml = new DomainSpec
        {
            Name = $"{host.DomainName}-left",
            Kernel = image.Kernel,
            Initrd = image.InitrdFor(GuestProfile.Lean),
            KernelCommandLine = GuestImage.KernelCommandLine(GuestProfile.Lean),
            Disks = [new DomainDiskSpec(Path.Combine(named.ImageFolder, "overlay1.qcow2"))],
        }.ToXml();
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        using var leftDomain = await connection.DefineDomainAsync(xml);
        await host.RunAsync($"nohup tail -f {busy.ImageFolder}/overlay1.qcow2 >/dev/null 2>&1 & echo $! > {host.Folder}/tail.pid");
        try
        {
            var doctor = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "doctor", "--uri", host.Uri, "--host-folder", hostFolder);
            output.WriteLine(doctor.StandardOutput);
            Assert.Matches(@"leftovers on host\s+" + System.Text.RegularExpressions.Regex.Escape(hostFolder) + @" on root@127\.0\.0\.1:\d+: 1 run folder\(s\) left \([\d.]+ MiB\), 1 kept on purpose, 2 in use, 1 other entry not the lab's \(lab clean --uri removes them\)", doctor.StandardOutput);

            var dry = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "clean", "--uri", host.Uri, "--host-folder", hostFolder, "-n");
            output.WriteLine(dry.StandardOutput + dry.StandardError);
            Assert.Equal(0, dry.ExitCode);
            Assert.Contains($"would remove {abandoned.ImageFolder} on ", dry.StandardOutput, StringComparison.Ordinal);
            Assert.Single(dry.StandardOutput.Split('\n'), l => l.StartsWith("would remove", StringComparison.Ordinal));
            Assert.True(await host.Shell.DirectoryExistsAsync(abandoned.ImageFolder), "a dry run removed a folder");

            var clean = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "clean", "--uri", host.Uri, "--host-folder", hostFolder);
            output.WriteLine(clean.StandardOutput + clean.StandardError);
            Assert.Equal(0, clean.ExitCode);
            Assert.Contains($"removed {abandoned.ImageFolder} on ", clean.StandardOutput, StringComparison.Ordinal);
            Assert.Contains($"kept {kept.ImageFolder} on {host.Shell.Name}: KeepArtifacts", clean.StandardOutput, StringComparison.Ordinal);
            Assert.Matches($@"kept {System.Text.RegularExpressions.Regex.Escape(busy.ImageFolder)} on \S+: in use \(process \d+ there names a file in it\)", clean.StandardOutput);
            Assert.Contains($"kept {named.ImageFolder} on {host.Shell.Name}: in use (domain {host.DomainName}-left's definition names overlay1.qcow2 in it)", clean.StandardOutput, StringComparison.Ordinal);
            Assert.False(await host.Shell.DirectoryExistsAsync(abandoned.ImageFolder));
            Assert.True(await host.Shell.FileExistsAsync(Path.Combine(kept.ImageFolder, "overlay1.qcow2")));

            var all = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "clean", "--uri", host.Uri, "--host-folder", hostFolder, "--all");
            output.WriteLine(all.StandardOutput + all.StandardError);
            Assert.Contains($"removed {kept.ImageFolder} on ", all.StandardOutput, StringComparison.Ordinal);
            Assert.True(await host.Shell.FileExistsAsync(Path.Combine(busy.ImageFolder, "overlay1.qcow2")));
            Assert.True(await host.Shell.FileExistsAsync(Path.Combine(named.ImageFolder, "overlay1.qcow2")));
            Assert.Equal("precious", (await host.RunAsync($"cat {foreign}/notes.txt")).Trim());
            // Nothing of it was ever visible here.
            Assert.Empty(Directory.EnumerateFileSystemEntries(host.Folder));
        }
        finally
        {
            await host.RunAsync($"kill $(cat {host.Folder}/tail.pid); rm -rf {ShellQuote.Quote(hostFolder)} {host.Folder}/tail.pid");
            await leftDomain.UndefineAsync();
            Directory.Delete(local, recursive: true);
        }
    }

    /// <summary>
    /// The second host goes down in the middle of a run on its researcher's domain: the lab's process and its kernel
    /// are SIGKILLed (no exit hook runs) and the domain destroyed (a power cut), with the domain on the lab's overlays
    /// and its definition naming them. `lab clean --uri` finds the run folder, hands the domain back from the take-over
    /// record the lab left there (its definition names its own images again, no snapshot record of the lab's), and
    /// removes the folder; the researcher's images keep their bytes and the domain boots on them.
    /// </summary>
    [Fact]
    public async Task Given_a_run_on_the_second_hosts_domain_cut_off_with_its_host_When_lab_clean_uri_runs_Then_the_domain_is_handed_back_to_its_own_images_and_the_run_folder_removed()
    {
        await EnsureRunningAsync();
        var untouched = host.Images.Where(i => !i.EndsWith("/root.qcow2", StringComparison.Ordinal)).ToList();
        var before = await host.HashImagesAsync();
        var hostFolder = Path.Combine(host.Folder, "lab-cut");
        var local = Directory.CreateTempSubdirectory("lab-cut-").FullName;
        var notebook = Path.Combine(NotebookRun.RepoRoot, "notebooks", "01-live-snapshot-integrity.ipynb");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "lab.dll"), "run", notebook, "-o", Path.Combine(local, "x.ipynb"), "--no-progress",
            "-p", "Backend", "libvirt", "-p", "Domain", host.DomainName, "-p", "LibvirtUri", host.Uri, "-p", "HostFolder", hostFolder,
            "-p", "Count", "400000000", "-p", "SnapshotAfterLines", "399000000", "-p", "OutputDir", local,
        ])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        using var domain = await connection.LookupDomainAsync(host.DomainName);
        using (var lab = System.Diagnostics.Process.Start(start)!)
        {
            var printed = Task.WhenAll(lab.StandardOutput.ReadToEndAsync(), lab.StandardError.ReadToEndAsync());
            try
            {
                await WaitForTakeOverAsync(domain, hostFolder);
            }
            finally
            {
                // The lab's process and its kernel die at once, as on a host that goes down; then the domain with it.
                await KillTreeAsync(lab.Id);
            }
            await domain.DestroyAsync();
            await lab.WaitForExitAsync();
            output.WriteLine(string.Join("\n", await printed));
        }
        // What that leaves: the definition names the lab's overlays; a take-over record beside them.
        var left = await domain.ListDisksAsync(inactive: true);
        Assert.All(left, d => Assert.StartsWith(hostFolder + "/", d.Source, StringComparison.Ordinal));
        var runFolder = Path.GetDirectoryName(left[0].Source)!;
        Assert.True(await host.Shell.FileExistsAsync(Path.Combine(runFolder, LabKernel.Backends.TakeOverRecord.FileName)));
        // Nothing of the killed run may still be working in the folder there when lab clean looks (an SSH command of
        // the kernel's, cut off, can outlive it for a moment).
        await Poll.UntilAsync(async _ =>
        {
            var busy = (await host.RunAsync("ps -eo pid=,args=")).Split('\n').Where(l => l.Contains(hostFolder + "/", StringComparison.Ordinal)).ToList();
            return (busy.Count == 0, string.Join("; ", busy));
        }, "no process on the second host to name the run folder", TimeSpan.FromMinutes(1));
        try
        {
            var clean = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "clean", "--uri", host.Uri, "--host-folder", hostFolder);
            output.WriteLine(clean.StandardOutput + clean.StandardError);
            Assert.Equal(0, clean.ExitCode);
            Assert.Contains($"handed domain {host.DomainName} back: its definition names its own images again (vda root.qcow2, vdb data.qcow2)", clean.StandardOutput, StringComparison.Ordinal);
            Assert.Contains($"removed {runFolder} on ", clean.StandardOutput, StringComparison.Ordinal);
            Assert.Equal([host.Images[0], host.Images[3]], (await domain.ListDisksAsync(inactive: true)).Select(d => d.Source));
            Assert.Empty(await domain.Snapshots.ListAsync());
            Assert.False(await host.Shell.DirectoryExistsAsync(runFolder));
            var after = await host.HashImagesAsync();
            foreach (var image in untouched)
            {
                Assert.True(before[image] == after[image], $"{Path.GetFileName(image)} changed on the second host");
            }
            // Its own again: it boots on its images.
            await domain.StartAsync();
            await domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
            Assert.Empty(Directory.EnumerateFileSystemEntries(host.Folder));
        }
        finally
        {
            await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
            Directory.Delete(local, recursive: true);
            await host.RestoreUsersDomainAsync(domain, hostFolder);
        }
    }

    /// <summary>
    /// `lab sweep` over the second host and this machine, the second host going down (its libvirtd and the domain's
    /// QEMU killed) while its run has the researcher's domain: that run fails as the host's failure and is run again on
    /// this machine, so no combination is lost; once the host is back, `lab clean --uri` hands its domain back.
    /// </summary>
    [Fact]
    public async Task Given_a_sweep_whose_second_host_goes_down_mid_run_Then_its_combination_is_run_again_on_this_machine_and_none_is_lost()
    {
        await EnsureRunningAsync();
        using var scratch = RunnerTestSupport.TempDir("sweep-cut");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Count: [400000]\nSnapshotAfterLines: [40000]\nQuiesce: [fsfreeze, sync]\n");
        var hostFolder = Path.Combine(host.Folder, "lab-sweep-cut");
        var hosts = Path.Combine(scratch.Path, "hosts.yaml");
        // One slot on each host: one combination goes to the second host, whose runs give its libvirtd 10 s to come back.
        await File.WriteAllTextAsync(hosts, $"- uri: \"{host.Uri}\"\n  jobs: 1\n  domain: {host.DomainName}\n  hostFolder: {hostFolder}\n  reconnect: 10\n- uri: qemu:///system\n  jobs: 1\n");
        var dir = Path.Combine(scratch.Path, "sweep");
        var notebook = Path.Combine(NotebookRun.RepoRoot, "notebooks", "01-live-snapshot-integrity.ipynb");
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        using var domain = await connection.LookupDomainAsync(host.DomainName);

        try
        {
            var sweep = RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(15), "sweep", notebook, "--matrix", matrix, "--hosts", hosts, "-o", dir);
            await WaitForTakeOverAsync(domain, hostFolder);
            await host.CutOffAsync();
            var result = await sweep;
            output.WriteLine(result.StandardOutput + result.StandardError);
            await host.ComeBackAsync();

            var runs = RunnerTestSupport.ReadJson(Path.Combine(dir, "sweep.json"))["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
            Assert.True(result.ExitCode == 0, $"lab sweep exited {result.ExitCode}: {string.Join(" | ", runs.Select(r => $"{r["id"]}: {r["status"]} {r["error"]}"))}");
            var records = runs.Select(r => RunnerTestSupport.ReadJson(Path.Combine(dir, r["folder"]!.GetValue<string>(), "result.json"))).ToList();
            Assert.Equal(2, records.Count);
            Assert.All(records, r => Assert.Equal("ok", r["status"]!.GetValue<string>()));
            Assert.All(records, r => Assert.Equal("qemu:///system", r["host"]!.GetValue<string>()));
            var retried = Assert.Single(records, r => r["retry_of"] is not null);
            Assert.Equal(host.Uri, retried["retry_of"]!.GetValue<string>());
            // The failed attempt's log stays beside the retry's run (why the host failed is in it).
            var retriedFolder = Path.Combine(dir, runs[records.IndexOf(retried)]["folder"]!.GetValue<string>());
            Assert.True(File.Exists(Path.Combine(retriedFolder, "failed-attempt-1.log")), $"no failed-attempt-1.log in {retriedFolder}: {string.Join(", ", Directory.EnumerateFiles(retriedFolder).Select(Path.GetFileName))}");
            // The progress lines say it too, and the failed attempt's error names the host that went away.
            Assert.Contains($"(retry: {host.Uri} failed: ", result.StandardOutput + result.StandardError, StringComparison.Ordinal);
            Assert.Contains("went away and did not accept connections again within 10 s", result.StandardOutput + result.StandardError, StringComparison.Ordinal);
            Assert.Contains("LibvirtConnectionLostException", retried["retry_because"]!.GetValue<string>(), StringComparison.Ordinal);

            // The host is back with its domain shut off on the lab's overlays: lab clean --uri hands it back.
            Assert.Equal(DomainState.ShutOff, await domain.GetStateAsync());
            // What the host holds and the definition names before the clean, for a failure's message.
            var before = $"host folder: {(await host.RunAsync($"ls -laR {ShellQuote.Quote(hostFolder)} 2>&1 | head -40")).Trim()}; definition: {string.Join(", ", (await domain.ListDisksAsync(inactive: true)).Select(d => $"{d.Target}={d.Source}"))}";
            output.WriteLine(before);
            var clean = await RunnerTestSupport.LabProcessAsync(TimeSpan.FromMinutes(3), "clean", "--uri", host.Uri, "--host-folder", hostFolder);
            output.WriteLine(clean.StandardOutput + clean.StandardError);
            Assert.True(clean.StandardOutput.Contains($"handed domain {host.DomainName} back", StringComparison.Ordinal),
                $"lab clean did not hand the domain back: {clean.StandardOutput.Trim()} | before it, {before} | the failed run: {FailedRunTail(dir, runs)}");
            Assert.Equal([host.Images[0], host.Images[3]], (await domain.ListDisksAsync(inactive: true)).Select(d => d.Source));
        }
        finally
        {
            // A failure above must not leave the next tests the domain on this test's overlays.
            await host.ComeBackIfDownAsync();
            await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
            await host.RestoreUsersDomainAsync(domain, hostFolder);
        }
    }

    /// <summary>The end of what the sweep's failed attempt left (its log or executed notebook), for a failure's message.</summary>
    private static string FailedRunTail(string sweep, IEnumerable<System.Text.Json.Nodes.JsonObject> runs)
    {
        var lines = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories(sweep))
        {
            foreach (var file in Directory.EnumerateFiles(folder).Where(f => f.EndsWith(".log", StringComparison.Ordinal) || f.EndsWith("result.json", StringComparison.Ordinal)))
            {
                lines.Add($"{Path.GetFileName(folder)}/{Path.GetFileName(file)}: {string.Join(" / ", File.ReadAllLines(file).TakeLast(15))}");
            }
        }
        return lines.Count == 0 ? $"(no logs; runs: {string.Join(", ", runs.Select(r => r.ToJsonString()))})" : string.Join(" || ", lines);
    }

    /// <summary>Waits until the second host's domain definition names only the lab's files under <paramref name="hostFolder"/>.</summary>
    private static Task WaitForTakeOverAsync(LibvirtDomain domain, string hostFolder) =>
        Poll.UntilAsync(async _ =>
        {
            var disks = await domain.ListDisksAsync(inactive: true);
            return (disks.All(d => d.Source.StartsWith(hostFolder + "/", StringComparison.Ordinal)), string.Join(", ", disks.Select(d => d.Source)));
        }, "the lab to take the second host's domain over", TimeSpan.FromMinutes(3));

    /// <summary>SIGKILLs <paramref name="pid"/> and every process below it, all in one signal call.</summary>
    private static async Task KillTreeAsync(int pid)
    {
        var processes = LabKernel.Host.HostProcesses.List();
        var tree = new List<int> { pid };
        for (var i = 0; i < tree.Count; i++)
        {
            tree.AddRange(processes.Where(p => p.ParentPid == tree[i]).Select(p => p.Pid));
        }
        await ProcessRunner.RunAsync("kill", ["-KILL", .. tree.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))], new ProcessOptions { Check = false });
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
        // A million lines, as the other runs there: over SSH the snapshot's round trips take longer, and a 400,000-line
        // writer once finished before them in a rehearsal (the sync run came out refuted).
        await File.WriteAllTextAsync(matrix, "Count: [1000000]\nSnapshotAfterLines: [40000]\nQuiesce: [fsfreeze, sync]\n");
        var hostFolder = Path.Combine(host.Folder, "lab-sweep");
        var hosts = Path.Combine(scratch.Path, "hosts.yaml");
        await File.WriteAllTextAsync(hosts, $"- uri: qemu:///system\n  jobs: 1\n- uri: \"{host.Uri}\"\n  jobs: 1\n  domain: {host.DomainName}\n  hostFolder: {hostFolder}\n");
        var dir = Path.Combine(scratch.Path, "sweep");
        var notebook = Path.Combine(NotebookRun.RepoRoot, "notebooks", "01-live-snapshot-integrity.ipynb");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var exit = await RunnerTestSupport.Lab("sweep", notebook, "--matrix", matrix, "--hosts", hosts, "-o", dir);

        var wall = clock.Elapsed;
        var runs = RunnerTestSupport.ReadJson(Path.Combine(dir, "sweep.json"))["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var results = runs.Select(r => RunnerTestSupport.ReadJson(Path.Combine(dir, r["folder"]!.GetValue<string>(), "result.json"))).ToList();
        Assert.True(exit == 0, $"lab sweep exited {exit}: {string.Join(" | ", results.Select(r => $"{r["host"]}: {r["status"]} {r["error"]} "
            + string.Join("; ", r["findings"]!.AsArray().Where(f => f!["unexpected"]!.GetValue<bool>()).Select(f => $"{f!["claim"]}: {f["observed"]}"))))}");
        Assert.Equal(new[] { "qemu:///system", host.Uri }.Order(), results.Select(r => r["host"]!.GetValue<string>()).Order());
        foreach (var result in results)
        {
            Assert.Equal("ok", result["status"]!.GetValue<string>());
            Assert.All(result["findings"]!.AsArray(), f => Assert.False(f!["unexpected"]!.GetValue<bool>(), $"{result["host"]}: {f["claim"]}: {f["observed"]}"));
            Assert.Equal(1000000, result["measurements"]!["lines_in_new_top"]!.GetValue<double>());
        }
        // On the second host the researcher's images were handed back unchanged.
        var remote = results.Single(r => r["host"]!.GetValue<string>() == host.Uri);
        Assert.Contains(remote["findings"]!.AsArray(), f => f!["claim"]!.GetValue<string>().StartsWith("Your domain's images (vda, vdb) were not written", StringComparison.Ordinal) && f["verdict"]!.GetValue<string>() == "confirmed");
        var oneByOne = results.Sum(r => r["duration"]!.GetValue<double>());
        output.WriteLine($"sweep over two hosts: {wall.TotalSeconds:0} s wall; the two runs took {oneByOne:0} s together");
        await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
    }

    private Task EnsureRunningAsync() => host.EnsureUsersDomainRunningAsync();
}
