using LabKernel.Backends;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Guests;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Images;
using LabKernel.Libvirt;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// The backend-neutral guest (<see cref="LabGuests"/>) on libvirt: the shared domain stands in for a user's own
/// domain, which the lab takes over and must hand back exactly as it found it; the notebooks run on libvirt.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LabGuestTests(LibvirtFixture fx, ITestOutputHelper output)
{
    /// <summary>The system's clock a century on, counting how often a wait reads it.</summary>
    private sealed class CenturyOnClock : TimeProvider
    {
        private int _timestamps;
        public static readonly TimeSpan Shift = TimeSpan.FromDays(36525);
        public int TimestampsRead => Volatile.Read(ref _timestamps);
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Shift;
        public override long GetTimestamp()
        {
            Interlocked.Increment(ref _timestamps);
            return System.GetTimestamp();
        }
    }

    /// <summary>
    /// The clock given in the top-level options is the libvirt guest's too, as it is the QEMU guest's: its connection's
    /// waits read it and the events libvirt delivers are stamped by it (before, libvirt guests took the system clock).
    /// </summary>
    [Fact]
    public async Task Given_a_clock_in_the_options_When_a_lab_made_domain_starts_Then_its_waits_and_its_events_run_on_that_clock()
    {
        var clock = new CenturyOnClock();
        var folder = Directory.CreateTempSubdirectory("lab-clock-").FullName;
        try
        {
            await using var guest = (LibvirtLabGuest)await LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")], Time = clock,
            });
            Assert.Same(clock, guest.Domain.Connection.Time);
            // The wait for the agent after the start ran on it.
            Assert.True(clock.TimestampsRead > 0, "no wait read the given clock");
            var started = await Poll.UntilAsync(ct => Task.FromResult(guest.Domain.Connection.RecentEvents.OfType<DomainLifecycleEventRecord>()
                .FirstOrDefault(e => e.Domain == guest.Name && e.Event == DomainLifecycleEvent.Started) is { } e ? (true, e, "") : (false, null!, "not yet")),
                $"libvirt's Started event of domain '{guest.Name}'", TimeSpan.FromSeconds(30));
            Assert.True(started.At > DateTimeOffset.UtcNow + CenturyOnClock.Shift - TimeSpan.FromHours(1), $"the Started event is stamped {started.At:u}, not on the given clock");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// A libvirt guest has one block layer for its disks: libvirt's block API, and QMP's dirty-bitmap backups through
    /// the domain's monitor passthrough (before, a notebook took backups from a second object, the guest's monitor).
    /// A domain's bare block layer, given no passthrough, refuses a backup in one line.
    /// </summary>
    [Fact]
    public async Task Given_a_lab_made_domain_When_backed_up_through_its_block_layer_Then_the_full_backup_and_an_increment_run_through_the_passthrough()
    {
        var folder = Directory.CreateTempSubdirectory("lab-backup-").FullName;
        try
        {
            await using var guest = await LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
            });
            Assert.True(guest.Block.Capabilities.Backup);
            var options = new LabKernel.Block.BackupOptions { Bitmap = "lab-test" };
            var full = await guest.Block.FullBackupAsync(guest.Disk, Path.Combine(folder, "full.qcow2"), options);
            Assert.True(File.Exists(full.Target));
            await guest.Agent.ShellAsync("head -c 4M /dev/urandom > /root/after-full.bin && sync", new GuestExecOptions { Check = true });
            var bitmap = Assert.Single(await guest.Block.QueryBitmapsAsync(guest.Disk), b => b.Name == "lab-test");
            Assert.True(bitmap.Count >= 4L << 20, $"the bitmap marks {bitmap.Count} bytes after 4 MiB were written");
            var increment = await guest.Block.IncrementalBackupAsync(guest.Disk, Path.Combine(folder, "inc1.qcow2"), full, options);
            output.WriteLine($"full {full.BytesCopied} bytes, increment {increment.BytesCopied} bytes of {bitmap.Count} marked");
            Assert.InRange(increment.BytesCopied, 4L << 20, full.BytesCopied - 1);

            // The same domain's block layer as libvirt alone gives it: no passthrough, so no backup.
            await using var connection = await LibvirtConnection.OpenAsync();
            using var bare = await connection.LookupDomainAsync(guest.Name);
            LabKernel.Block.ILabBlock block = bare.Block;
            Assert.False(block.Capabilities.Backup);
            var e = await Assert.ThrowsAsync<LabUsageException>(() => block.FullBackupAsync("vda", Path.Combine(folder, "refused.qcow2")));
            output.WriteLine(e.Message);
            Assert.StartsWith($"a backup on domain '{guest.Name}' goes through its QMP monitor passthrough", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            Assert.False(File.Exists(Path.Combine(folder, "refused.qcow2")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_a_users_running_domain_When_the_lab_takes_it_over_Then_it_writes_only_its_own_overlays_and_hands_the_domain_back()
    {
        await using var scope = await fx.ScopeAsync();
        var userImage = fx.Guest.RootOverlay;
        var snapshotsBefore = (await fx.Domain.Snapshots.ListAsync()).Select(s => s.Name).ToArray();
        var folder = Directory.CreateTempSubdirectory("lab-takeover-").FullName;
        try
        {
            var lab1 = Path.Combine(folder, "overlay1.qcow2");
            var lab2 = Path.Combine(folder, "overlay2.qcow2");
            var guest = (LibvirtLabGuest)await LabGuests.StartAsync(new LabGuestOptions { Backend = GuestBackend.Libvirt, Domain = fx.Domain.Name, WorkFolder = folder, Overlays = [lab1] });
            string hashDuring;
            await using (guest)
            {
                output.WriteLine(guest.Description);
                Assert.True(guest.IsUserDomain);
                Assert.Equal("vda", guest.Disk);
                Assert.Equal(userImage, guest.BaseImage);
                var chain = await guest.Block.QueryChainAsync(guest.Disk);
                Assert.Equal([lab1, userImage], chain.Filenames.Take(2));
                // From here on the user's image is a read-only backing file: its bytes must not change.
                hashDuring = await FileHash.Sha256Async(userImage);

                await guest.Agent.ExecAsync(["/bin/sh", "-c", "echo lab-was-here > /root/takeover-marker && sync"], new GuestExecOptions { Check = true });
                var after = await guest.Block.SnapshotAsync(guest.Disk, lab2);
                Assert.Equal([lab2, lab1, userImage], after.Filenames.Take(3));
                var (_, _, agreement) = await guest.Block.CheckChainAgreementAsync(guest.Disk);
                Assert.True(agreement.Agrees, agreement.Summary);
                Assert.Equal("lab-was-here\n", System.Text.Encoding.UTF8.GetString(await guest.Agent.ReadFileAsync("/root/takeover-marker")));
                await guest.StopAsync();
                Assert.Equal(hashDuring, await FileHash.Sha256Async(userImage));
            }
            output.WriteLine(guest.HandBack!.Summary);
            Assert.True(guest.HandBack.ImagesUnchanged, guest.HandBack.Evidence);
            Assert.Equal(hashDuring, guest.HandBack.Images.Single(i => i.Image == userImage).Sha256AtTakeOver);

            Assert.Equal(DomainState.Running, await fx.Domain.GetStateAsync());
            var persistent = (await fx.Domain.ListDisksAsync(inactive: true)).Single(d => d.Target == "vda");
            Assert.Equal(userImage, persistent.Source);
            var live = await fx.Domain.Block.QueryChainAsync("vda");
            Assert.Equal(userImage, live.Source);
            Assert.Equal(snapshotsBefore, (await fx.Domain.Snapshots.ListAsync()).Select(s => s.Name).ToArray());
            // What the guest wrote during the experiment stayed in the lab's overlays.
            var marker = await fx.Domain.Agent.ExecAsync(["test", "-e", "/root/takeover-marker"]);
            Assert.NotEqual(0, marker.ExitCode);
            Assert.True(File.Exists(lab1) && File.Exists(lab2), "the lab's overlays are the experiment's to keep or delete");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_a_domain_name_that_does_not_exist_When_the_lab_starts_Then_the_error_names_it_and_nothing_is_made()
    {
        var folder = Directory.CreateTempSubdirectory("lab-takeover-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<LibvirtDomainNotFoundException>(() => LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, Domain = "no-such-domain-" + Guid.NewGuid().ToString("N")[..6], WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
            }));
            Assert.Contains("no libvirt domain named", e.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_notebook_02_on_the_libvirt_backend_When_run_Then_every_claim_is_confirmed_and_no_domain_is_left()
    {
        var before = await DomainNamesAsync();
        // The snapshot point by time this once (the others use a line count). A writer with room to spare: 2 s in, a
        // faster host had flushed 489,000 lines, and 600,000 ended before the commit did (the overlap claim refuted).
        using var run = await NotebookRun.RunAsync("02-snapshot-and-commit-integrity", "Count", "2000000", "SnapshotAfterSeconds", "2", "Quiesce", "fsfreeze", "Backend", "libvirt");
        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.True(run.Findings.Count >= 9, $"{run.Findings.Count} findings");
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.Contains("libvirt's view", StringComparison.Ordinal));
        await AssertNoLabMadeDomainLeftAsync(before, "lab-nb02-");
    }

    [Fact]
    public async Task Given_notebook_01_on_a_users_domain_When_run_Then_every_claim_is_confirmed_and_the_domain_is_handed_back()
    {
        await using var scope = await fx.ScopeAsync();
        var userImage = fx.Guest.RootOverlay;
        // A writer with room to spare: under a saturated host the snapshot (fsfreeze through libvirt) began at 126,000 lines and
        // a 400,000-line writer ended before it did (the overlap claim refuted, rightly).
        using var run = await NotebookRun.RunAsync("01-live-snapshot-integrity", "Count", "1000000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze", "Backend", "libvirt", "Domain", fx.Domain.Name);
        Assert.True(run.ExitCode == 0, run.FirstError());
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Equal(DomainState.Running, await fx.Domain.GetStateAsync());
        Assert.Equal(userImage, (await fx.Domain.Block.QueryChainAsync("vda")).Source);
        Assert.Equal(userImage, (await fx.Domain.ListDisksAsync(inactive: true)).Single(d => d.Target == "vda").Source);
    }

    [Fact]
    public async Task Given_a_users_one_disk_domain_with_libvirts_default_pci_layout_When_notebook_04_runs_on_it_Then_its_data_disk_is_plugged_and_swapped_live_and_the_domain_handed_back()
    {
        // The shared domain lists no PCI controller: libvirt gives it a root port per device and one spare, where the
        // data disk goes (UserDisksTests' domain lists its spare ports itself).
        await using var scope = await fx.ScopeAsync();
        var userImage = fx.Guest.RootOverlay;
        using var run = await NotebookRun.RunAsync("04-snapshot-chain-io", "Snapshots", "1", "FilesPerSnapshot", "1", "FileMiB", "1", "FioSize", "8m", "FioSeconds", "1", "ProbeMiB", "8", "Repeats", "1",
            "Backend", "libvirt", "Domain", fx.Domain.Name);

        Assert.True(run.ExitCode == 0, run.FirstError());
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("After reverting to snapshot k the newest tag file", StringComparison.Ordinal) && f.Observed.StartsWith("2 reverts", StringComparison.Ordinal));
        // Handed back as found: running, on its own image (definition and live), no snapshot record and no disk of the lab's.
        Assert.Equal(DomainState.Running, await fx.Domain.GetStateAsync());
        Assert.Equal(userImage, (await fx.Domain.Block.QueryChainAsync("vda")).Source);
        Assert.Equal(userImage, (await fx.Domain.ListDisksAsync(inactive: true)).Single(d => d.Target == "vda").Source);
        Assert.Equal(["vda"], (await fx.Domain.ListDisksAsync(inactive: false)).Select(d => d.Target));
        Assert.Equal(scope.Start.SnapshotNames, (await fx.Domain.Snapshots.ListAsync()).Select(s => s.Name).ToArray());
    }

    [Fact]
    public async Task Given_notebook_03_on_a_users_domain_When_run_Then_every_claim_is_confirmed_through_the_monitor_passthrough_and_the_domain_is_handed_back()
    {
        await using var scope = await fx.ScopeAsync();
        var userImage = fx.Guest.RootOverlay;
        var hashBefore = await FileHash.Sha256Async(userImage);
        await fx.Domain.ShutdownAsync(TimeSpan.FromMinutes(2));
        var hashOff = await FileHash.Sha256Async(userImage);
        using var run = await NotebookRun.RunAsync("03-drive-mirror", "FileOps", "12", "WriteMiB", "8", "OutageSeconds", "3", "Backend", "libvirt", "Domain", fx.Domain.Name);
        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("1. Every created", StringComparison.Ordinal) && f.Observed.Contains("read offline", StringComparison.Ordinal));
        // Found shut off, left shut off, on its own image, which the lab never wrote.
        Assert.Equal(DomainState.ShutOff, await fx.Domain.GetStateAsync());
        Assert.Equal(userImage, (await fx.Domain.ListDisksAsync(inactive: true)).Single(d => d.Target == "vda").Source);
        Assert.Equal(hashOff, await FileHash.Sha256Async(userImage));
        output.WriteLine($"user image {hashBefore[..12]} running, {hashOff[..12]} shut off and after the notebook");
    }

    [Fact]
    public async Task Given_a_run_on_a_users_domain_interrupted_mid_write_Then_its_definition_names_the_users_image_again_and_every_image_checks_clean()
    {
        await using var scope = await fx.ScopeAsync();
        var userImage = fx.Guest.RootOverlay;
        using var run = await NotebookRun.RunWithAsync("01-live-snapshot-integrity", ["--cell-timeout", "30"],
            "Count", "400000000", "SnapshotAfterLines", "399000000", "Backend", "libvirt", "Domain", fx.Domain.Name);
        Assert.Equal(3, run.ExitCode);
        Assert.Equal("timeout", run.CellStatus("SequenceWriter.StartAsync"));
        // The exit hook had no time for a clean hand-back: the guest still runs on the lab's overlay, but a
        // restart returns it to the user's image, and no lab snapshot record is left.
        Assert.Equal(userImage, (await fx.Domain.ListDisksAsync(inactive: true)).Single(d => d.Target == "vda").Source);
        Assert.Equal(scope.Start.SnapshotNames, (await fx.Domain.Snapshots.ListAsync()).Select(s => s.Name).ToArray());
        // Back to the user's image the way a user would: stop the domain (its QEMU closes the lab's images), then
        // check them (a running guest may still be writing into the active overlay: the interrupted writer runs on
        // in the guest, and an image QEMU has open for writing cannot be checked: a cluster allocated but not yet
        // linked reads as leaked, as one clean-clone run saw), then start it.
        await fx.Domain.DestroyAsync();
        var images = Directory.GetFiles(run.Folder, "*.qcow2", SearchOption.AllDirectories);
        Assert.NotEmpty(images);
        foreach (var image in images)
        {
            var check = await QemuImg.Local.CheckAsync(image);
            Assert.True(check.IsClean, $"{image}: {check.Summary}");
        }
        await fx.Domain.StartAsync();
        await fx.Domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(userImage, (await fx.Domain.Block.QueryChainAsync("vda")).Source);
    }

    [Fact]
    public async Task Given_a_run_on_a_lab_made_domain_interrupted_mid_write_Then_no_domain_is_left_and_every_image_checks_clean()
    {
        var before = await DomainNamesAsync();
        using var run = await NotebookRun.RunWithAsync("01-live-snapshot-integrity", ["--cell-timeout", "30"],
            "Count", "400000000", "SnapshotAfterLines", "399000000", "Backend", "libvirt");
        Assert.Equal(3, run.ExitCode);
        Assert.Equal("timeout", run.CellStatus("SequenceWriter.StartAsync"));
        await AssertNoLabMadeDomainLeftAsync(before, "lab-nb01-");
        await run.AssertLeftCleanAsync();
    }

    /// <summary>
    /// A cell that fails once the lab's own domain runs: no clean-up cell runs, and the kernel exits when `lab run`
    /// closes it, so the exit hook is what destroys and undefines the domain.
    /// </summary>
    [Fact]
    public async Task Given_a_cell_that_fails_after_a_lab_made_domain_started_When_the_run_ends_Then_the_domain_is_destroyed_and_undefined()
    {
        var before = await DomainNamesAsync();
        var folder = Directory.CreateTempSubdirectory("lab-nb-fails-").FullName;
        try
        {
            var input = Path.Combine(folder, "fails.dib");
            await File.WriteAllTextAsync(input,
                "#!csharp\n\n#r \"nuget: LabNotebooks, 0.1.0\"\nusing LabNotebooks;\n\n#!csharp\n\n" +
                $"var lab = await Lab.StartAsync(\"fails\", new LabSetup {{ Backend = \"libvirt\", OutputDir = {System.Text.Json.JsonSerializer.Serialize(folder)} }});\n" +
                "throw new InvalidOperationException($\"failed with domain {lab.Guest.Name} running\");\n");
            using var run = await NotebookRun.RunFileAsync(input);

            Assert.Equal(1, run.ExitCode);
            Assert.Equal("error", run.CellStatus("Lab.StartAsync"));
            // The error is the cell's own, after the start: the domain it names was defined and running then.
            var error = run.FirstError();
            output.WriteLine(error);
            var name = System.Text.RegularExpressions.Regex.Match(error, "failed with domain (\\S+) running").Groups[1].Value;
            Assert.StartsWith("lab-", name, StringComparison.Ordinal);
            Assert.DoesNotContain(name, await DomainNamesAsync());
            await AssertNoLabMadeDomainLeftAsync(before, name[..^6]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// No domain the run could have made (named <c>PREFIX</c> plus six hex digits: <c>lab-nb02-</c> for notebook 02's) is
    /// defined now that was not before. Other tests' domains, lane D's lab-made ones among them (see
    /// <see cref="Lanes"/>), and whoever else uses this libvirtd come and go meanwhile and do not count.
    /// </summary>
    private static async Task AssertNoLabMadeDomainLeftAsync(string[] before, string prefix)
    {
        var left = (await DomainNamesAsync()).Except(before).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, $"lab-made domains left defined: {string.Join(", ", left)}");
    }

    private static async Task<string[]> DomainNamesAsync()
    {
        var r = await LabKernel.Processes.ProcessRunner.RunAsync("virsh", ["-c", LibvirtConnection.DefaultUri, "list", "--all", "--name"]);
        return r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }
}
