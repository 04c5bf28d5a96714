using LabKernel.Backends;
using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Libvirt;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// A researcher's persistent domain as they have it: two disks, each a qcow2 overlay over an image of its own,
/// made with plain qemu-img (not by the lab): <c>vda</c> root.qcow2 over root-golden.qcow2 (over the cached guest
/// image, so the lab's kernel boots it), <c>vdb</c> data.qcow2 over data-golden.raw with 1 MiB written into the
/// overlay at 32 MiB. Defined shut off, with an agent channel.
/// </summary>
public sealed class TwoDiskDomainFixture : IAsyncLifetime
{
    public LibvirtConnection Connection { get; private set; } = null!;
    public LibvirtGuest Guest { get; private set; } = null!;
    public LibvirtDomain Domain => Guest.Domain;
    public string Folder { get; } = Directory.CreateTempSubdirectory("lab-user-domain-").FullName;
    public string Root => Path.Combine(Folder, "root.qcow2");
    public string RootGolden => Path.Combine(Folder, "root-golden.qcow2");
    public string Data => Path.Combine(Folder, "data.qcow2");
    public string DataGolden => Path.Combine(Folder, "data-golden.raw");
    public IReadOnlyList<string> Images => [Root, RootGolden, Data, DataGolden];

    public async Task InitializeAsync()
    {
        await LibvirtFixture.EnsureLibvirtdAsync();
        var image = await GuestImageBuilder.EnsureAsync();
        // The researcher's own qemu-img, not the lab's QemuImg: these files are theirs.
        await ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.BaseImage, "-F", "qcow2", RootGolden]);
        await ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", RootGolden, "-F", "qcow2", Root]);
        await ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "raw", DataGolden, "64M"]);
        await ProcessRunner.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 0 1M", DataGolden]);
        await ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", DataGolden, "-F", "raw", Data]);
        await ProcessRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xd7 32M 1M", Data]);
        Connection = await LibvirtConnection.OpenAsync();
        Guest = await LibvirtGuest.CreateAsync(Connection, new LibvirtGuestOptions
        {
            Name = "labuser-" + Guid.NewGuid().ToString("N")[..8],
            WorkFolder = Folder,
            RootDisk = Root,
            ExtraDisks = [new DomainDiskSpec(Data, "vdb")],
            // As virt-install's domains have: notebook 04 hot-plugs its data disk into one.
            HotPlugSlots = 2,
            Start = false,
        });
    }

    public async Task<Dictionary<string, string>> HashAllAsync()
    {
        var hashes = new Dictionary<string, string>();
        foreach (var image in Images)
        {
            hashes[image] = await FileHash.Sha256Async(image);
        }
        return hashes;
    }

    public async Task DisposeAsync()
    {
        if (Guest is not null)
        {
            // The work folder is the test's (it holds the "user's" images): the guest removes only the domain.
            await Guest.DisposeAsync();
        }
        if (Connection is not null)
        {
            await Connection.DisposeAsync();
        }
        Directory.Delete(Folder, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class TwoDiskDomainCollection : ICollectionFixture<TwoDiskDomainFixture>
{
    public const string Name = "a researcher's two-disk domain";
}

/// <summary>
/// Every notebook on a researcher's two-disk domain shut off, and 03, 04 and 06 running (<see cref="RunningPass"/>): every image of the domain
/// keeps its bytes (the worked-on disk's image from take-over to hand-back, the other disk's always), no internal
/// snapshot or bitmap of the lab's is left in any of them, and the definition names the researcher's images again
/// afterwards. 06 takes libvirt's internal snapshot, which libvirt stores inside every qcow2 disk of the domain: with
/// every disk on a lab overlay it lands in the lab's overlays, and the guard refuses it when a disk is not.
/// </summary>
[Collection(TwoDiskDomainCollection.Name)]
[Trait(Lanes.Name, Lanes.BesideB)]
public sealed class UserDisksTests(TwoDiskDomainFixture fx, ITestOutputHelper output)
{
    /// <summary>
    /// Each notebook with the parameters it runs with on a researcher's two-disk domain, here and on the second host
    /// (<see cref="SecondHostNotebookTests"/>).
    /// </summary>
    internal static readonly (string Notebook, string[] Parameters)[] Runs =
    [
        ("01-live-snapshot-integrity", ["Count", "1000000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze"]),
        ("02-snapshot-and-commit-integrity", ["Count", "1000000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze"]),
        ("03-drive-mirror", ["FileOps", "10", "WriteMiB", "8", "OutageSeconds", "3"]),
        // Its data disk is hot-plugged (vdc, after the domain's own two) and swapped live for each revert; on the second
        // host it is made there and fio's results are read there.
        ("04-snapshot-chain-io", ["Snapshots", "2", "FilesPerSnapshot", "2", "FileMiB", "1", "FioSize", "8m", "FioSeconds", "1", "ProbeMiB", "8", "Repeats", "1"]),
        // Its copies are read offline on a user's domain (no kernel the lab boots); its backups go through QMP passthrough
        // (on the second host, both there).
        ("05-incremental-backup", ["Increments", "1", "IncrementMiB", "4"]),
        // Writers with room to spare: on this two-disk domain 06's two snapshots once outlasted a 400,000-line writer in
        // CI (it flushed its last 288,000 lines while they ran), so 06 runs its default writer and 01/02 a million lines
        // (over SSH the snapshots' round trips take longer still).
        ("06-snapshot-kinds", ["WriterLines", "2000000"]),
    ];

    [Fact]
    public async Task Given_a_second_qcow2_disk_the_lab_did_not_make_When_an_internal_snapshot_is_asked_Then_the_guard_refuses_it_naming_that_disk_before_libvirt_is_asked()
    {
        await EnsureStateAsync(running: false);
        var before = await fx.HashAllAsync();
        // The caller names the root image; the data disk's image, which libvirt would write too, nobody named.
        var e = await Assert.ThrowsAsync<ForeignImageException>(() => fx.Domain.Snapshots.CreateInternalAsync("lab-should-not", allowImages: [fx.Root]));
        output.WriteLine(e.Message);
        Assert.Equal(fx.Data, e.Path);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(await fx.Domain.Snapshots.ListAsync());
        Assert.Equal(before, await fx.HashAllAsync());
        await AssertNoLabMetadataInTheUsersImagesAsync();
    }

    [Fact]
    public async Task Given_another_disks_image_written_during_the_experiment_When_the_domain_is_handed_back_Then_the_evidence_says_which_image_changed()
    {
        await EnsureStateAsync(running: false);
        var folder = Directory.CreateTempSubdirectory("lab-written-").FullName;
        // A byte far past what the guest reads of vdb, flipped in the data disk's raw base and put back afterwards.
        const long Offset = 60L * 1024 * 1024;
        var guest = await LabGuests.StartAsync(new LabGuestOptions
        {
            Backend = GuestBackend.Libvirt, Domain = fx.Domain.Name, WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
        });
        byte original;
        try
        {
            Assert.Equal(["vda", "vdb"], guest.TakeOver!.Disks);
            original = FlipByte(fx.DataGolden, Offset);
        }
        finally
        {
            await guest.DisposeAsync();
        }
        try
        {
            var handBack = guest.HandBack!;
            output.WriteLine(handBack.Evidence);
            Assert.False(handBack.ImagesUnchanged);
            Assert.Equal("Your domain's images (vda, vdb) were not written between take-over and hand-back", handBack.Claim);
            Assert.Equal([fx.DataGolden], handBack.Images.Where(i => !i.Unchanged).Select(i => i.Image));
            Assert.StartsWith($"1 of {handBack.Images.Count} images changed: data-golden.raw (vdb) (", handBack.Evidence, StringComparison.Ordinal);
            // Every image of both disks was hashed, and the evidence says how much was read and how long it took.
            Assert.Equal(["vda", "vdb"], handBack.Disks);
            Assert.Contains(handBack.Images, i => i.Image == fx.RootGolden);
            Assert.Matches(@"; hashing \d+ MiB took \d+[.,]\d s$", handBack.Evidence);
        }
        finally
        {
            FlipByte(fx.DataGolden, Offset, original);
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Writes the complement of the byte at <paramref name="offset"/> (or <paramref name="value"/>); returns the byte it replaced.</summary>
    private static byte FlipByte(string file, long offset, byte? value = null)
    {
        using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        var old = (byte)f.ReadByte();
        f.Position = offset;
        f.WriteByte(value ?? (byte)~old);
        return old;
    }

    /// <summary>No internal snapshot and no dirty bitmap in any image of the user's (qemu-img snapshot -l and info).</summary>
    private async Task AssertNoLabMetadataInTheUsersImagesAsync()
    {
        foreach (var image in new[] { fx.Root, fx.RootGolden, fx.Data })
        {
            var list = await ProcessRunner.RunAsync("qemu-img", ["snapshot", "-U", "-l", image]);
            Assert.True(list.StandardOutput.Trim().Length == 0, $"{Path.GetFileName(image)} holds internal snapshots: {list.StandardOutput}");
            var info = await ProcessRunner.RunAsync("qemu-img", ["info", "-U", "--output=json", image]);
            Assert.DoesNotContain("\"bitmaps\"", info.StandardOutput, StringComparison.Ordinal);
            Assert.DoesNotContain("\"snapshots\"", info.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Given_a_misspelt_DomainDisk_When_the_lab_starts_Then_a_one_line_error_lists_the_domains_disks_and_nothing_changes()
    {
        var before = await fx.HashAllAsync();
        var folder = Directory.CreateTempSubdirectory("lab-vdz-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, Domain = fx.Domain.Name, DomainDisk = "vdz", WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
            }));
            Assert.Equal($"domain '{fx.Domain.Name}' has no disk vdz (it has vda, vdb)", e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        Assert.Equal(before, await fx.HashAllAsync());
    }

    /// <summary>
    /// A take-over that fails after the lab put its overlays into the definition and started the domain (here: the
    /// agent given 1 ms to answer): the domain is destroyed again and its definition names the researcher's images,
    /// before the error reaches the caller (before this, only a guest that existed had a hand-back, so the domain was
    /// left defined on the lab's overlays, which the run's clean-up then deleted).
    /// </summary>
    [Fact]
    public async Task Given_a_take_over_that_fails_after_the_overlays_went_on_When_the_error_comes_back_Then_the_domain_is_shut_off_on_its_own_images_again()
    {
        await EnsureStateAsync(running: false);
        var before = await fx.HashAllAsync();
        var folder = Directory.CreateTempSubdirectory("lab-failed-takeover-").FullName;
        try
        {
            var e = await Assert.ThrowsAnyAsync<LabException>(() => LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, Domain = fx.Domain.Name, WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
                AgentTimeout = TimeSpan.FromMilliseconds(1),
            }));
            output.WriteLine(e.Message);
            Assert.Contains("qemu-guest-agent", e.Message, StringComparison.Ordinal);
            Assert.Equal(DomainState.ShutOff, await fx.Domain.GetStateAsync());
            await AssertDefinitionNamesTheUsersImagesAsync();
            Assert.Equal(before, await fx.HashAllAsync());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_the_domain_paused_When_the_lab_starts_Then_a_one_line_error_says_to_resume_or_shut_it_off_and_nothing_changes()
    {
        await EnsureStateAsync(running: true);
        await fx.Domain.SuspendAsync();
        var folder = Directory.CreateTempSubdirectory("lab-paused-").FullName;
        try
        {
            // Paused, the guest writes nothing: every image keeps its bytes from here on.
            var before = await fx.HashAllAsync();
            var e = await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, Domain = fx.Domain.Name, WorkFolder = folder, Overlays = [Path.Combine(folder, "o1.qcow2")],
            }));
            output.WriteLine(e.Message);
            Assert.Contains($"domain '{fx.Domain.Name}' is paused: resume it or shut it off first", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
            Assert.Equal(DomainState.Paused, await fx.Domain.GetStateAsync());
            Assert.Equal(before, await fx.HashAllAsync());
            await AssertDefinitionNamesTheUsersImagesAsync();
        }
        finally
        {
            await fx.Domain.ResumeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_a_transient_domain_When_the_lab_starts_Then_a_one_line_error_says_it_needs_a_persistent_one_and_nothing_changes()
    {
        // A transient domain of its own (running, as transient domains are) on a scratch overlay made by plain qemu-img.
        var folder = Directory.CreateTempSubdirectory("lab-transient-").FullName;
        var image = await GuestImageBuilder.EnsureAsync();
        var disk = Path.Combine(folder, "transient.qcow2");
        await ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.BaseImage, "-F", "qcow2", disk]);
        var xml = new DomainSpec
        {
            Name = "labtransient-" + Guid.NewGuid().ToString("N")[..8],
            Kernel = image.Kernel,
            Initrd = image.InitrdFor(GuestProfile.Lean),
            KernelCommandLine = GuestImage.KernelCommandLine(GuestProfile.Lean),
            Disks = [new DomainDiskSpec(disk)],
            MemoryMiB = 256,
        }.ToXml();
        using var transient = await fx.Connection.CreateTransientDomainAsync(xml);
        var work = Path.Combine(folder, "work");
        Directory.CreateDirectory(work);
        try
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = GuestBackend.Libvirt, Domain = transient.Name, WorkFolder = work, Overlays = [Path.Combine(work, "o1.qcow2")],
            }));
            output.WriteLine(e.Message);
            Assert.StartsWith($"domain '{transient.Name}' is transient: the lab needs a persistent (defined) domain", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(work));
            Assert.Equal(DomainState.Running, await transient.GetStateAsync());
            Assert.Equal(disk, (await transient.ListDisksAsync()).Single().Source);
        }
        finally
        {
            await transient.DestroyAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Given_the_domain_shut_off_When_every_notebook_runs_on_it_Then_no_image_of_it_changes_and_it_is_left_shut_off_on_its_own_images()
    {
        await EnsureStateAsync(running: false);
        var before = await fx.HashAllAsync();
        foreach (var (notebook, parameters) in Runs)
        {
            using var run = await NotebookRun.RunAsync(notebook, [.. parameters, "Backend", "libvirt", "Domain", fx.Domain.Name]);
            Assert.True(run.ExitCode == 0, $"{notebook}: {run.FirstError()}");
            AssertFindings(notebook, run, running: false);
            Assert.Equal(DomainState.ShutOff, await fx.Domain.GetStateAsync());
            await AssertDefinitionNamesTheUsersImagesAsync();
            var after = await fx.HashAllAsync();
            foreach (var image in fx.Images)
            {
                Assert.True(before[image] == after[image], $"{notebook} changed {Path.GetFileName(image)}");
            }
            await AssertNoLabMetadataInTheUsersImagesAsync();
            output.WriteLine($"{notebook}: all {fx.Images.Count} images unchanged");
        }
    }

    /// <summary>
    /// The notebooks run on the domain running as well as shut off: those that change a running domain's disks beyond
    /// the lab's own layers (03 mirrors and pivots them, 04 hot-plugs and swaps a data disk, 06 reverts and restarts the
    /// domain). 01, 02 and 05 only snapshot, commit, pull and back up the lab's layers, with the same take-over and
    /// hand-back calls as these three; they run running on the second host's two-disk domain (SecondHostTests), 01
    /// on the running one-disk domain of LabGuestTests, and shut off here. (All six ran here in both states until
    /// session 15; the three cut about 100 s from the suite's longer lane.)
    /// </summary>
    private static readonly string[] RunningPass = ["03", "04", "06"];

    [Fact]
    public async Task Given_the_domain_running_When_notebooks_03_04_and_06_run_on_it_Then_its_root_image_is_not_written_from_take_over_to_hand_back_and_its_other_disk_never()
    {
        await EnsureStateAsync(running: true);
        // The guest writes its own root image while it runs on it; the data disk and both golden images it never
        // writes (the lean guest does not mount vdb), so their bytes must stay the same throughout.
        var untouched = new[] { fx.RootGolden, fx.Data, fx.DataGolden };
        var before = new Dictionary<string, string>();
        foreach (var image in untouched)
        {
            before[image] = await FileHash.Sha256Async(image);
        }
        foreach (var (notebook, parameters) in Runs.Where(r => RunningPass.Contains(r.Notebook[..2])))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(20));
            var atTakeOver = HashRootOnceTakenOverAsync(cts.Token);
            using var run = await NotebookRun.RunAsync(notebook, [.. parameters, "Backend", "libvirt", "Domain", fx.Domain.Name]);
            Assert.True(run.ExitCode == 0, $"{notebook}: {run.FirstError()}");
            AssertFindings(notebook, run, running: true);
            // Our own hash of root.qcow2, taken as soon as the lab's overlay was on top, is the one the lab's
            // hand-back finding reports for the take-over, and the lab found the same bytes at hand-back.
            var ours = await atTakeOver;
            var handBack = run.Findings.Single(f => f.Claim == HandBackClaim);
            Assert.Contains($"root.qcow2 {ours[..12]}", handBack.Observed, StringComparison.Ordinal);
            Assert.Equal("confirmed", handBack.Verdict);
            Assert.Equal(DomainState.Running, await fx.Domain.GetStateAsync());
            Assert.Equal(fx.Root, (await fx.Domain.Block.QueryChainAsync("vda")).Source);
            Assert.Equal(fx.Data, (await fx.Domain.Block.QueryChainAsync("vdb")).Source);
            // Nothing the lab plugged in is left (04's data disk went with the hand-back's power-off).
            Assert.Equal(["vda", "vdb"], (await fx.Domain.ListDisksAsync(inactive: false)).Select(d => d.Target));
            await AssertDefinitionNamesTheUsersImagesAsync();
            foreach (var image in untouched)
            {
                Assert.True(before[image] == await FileHash.Sha256Async(image), $"{notebook} changed {Path.GetFileName(image)}");
            }
            await AssertNoLabMetadataInTheUsersImagesAsync();
            output.WriteLine($"{notebook}: {handBack.Observed}");
        }
    }

    private const string HandBackClaim = "Your domain's images (vda, vdb) were not written between take-over and hand-back";

    private static void AssertFindings(string notebook, NotebookRun run, bool running)
    {
        Assert.NotEmpty(run.Findings);
        // libvirt 9.0 refuses to revert an external snapshot: 06 declares that refutation expected (exit 0 proves it).
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" || f.Verdict == "refuted" && f.Claim.StartsWith("Reverting the WithMemory", StringComparison.Ordinal),
            $"{notebook}: {f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim == HandBackClaim && f.Verdict == "confirmed");
        if (notebook.StartsWith("06", StringComparison.Ordinal))
        {
            // Every kind libvirt takes was taken on the user's domain (the internal one in the lab's overlays).
            Assert.Equal(5, run.Findings.Count(f => f.Claim.StartsWith("Reverting the ", StringComparison.Ordinal)));
            Assert.Contains(run.Findings, f => f.Claim.StartsWith("An internal snapshot grows the active qcow2 image", StringComparison.Ordinal) && f.Verdict == "confirmed");
        }
        // How the domain was taken over is a finding of its own: running, every disk moved in one atomic snapshot with
        // the filesystems frozen (the lean guest's agent can freeze); shut off, the overlays put on before the start.
        var takeOver = run.Findings.Single(f => f.Claim == "How the lab took over your domain's disk vda");
        Assert.Equal(running
            ? "first overlays taken live, atomically, with the guest's filesystems frozen (DISK_ONLY|ATOMIC|QUIESCE); every writable disk (vda, vdb) runs on a lab overlay, so nothing reaches your images"
            : "the domain was shut off: the lab put its overlays on before starting it, so nothing needed freezing; every writable disk (vda, vdb) runs on a lab overlay, so nothing reaches your images",
            takeOver.Observed);
        if (notebook.StartsWith("04", StringComparison.Ordinal))
        {
            // The data disk was plugged in after the domain's own disks, and each revert put the one asked for in its
            // place: the newest tag read back after reverting to snapshot k is k's.
            Assert.Contains(run.Findings, f => f.Claim.StartsWith("The data disk runs on a chain of 3 layers", StringComparison.Ordinal) && f.Verdict == "confirmed");
            Assert.Contains(run.Findings, f => f.Claim.StartsWith("After reverting to snapshot k the newest tag file", StringComparison.Ordinal) && f.Verdict == "confirmed" && f.Observed.StartsWith("3 reverts", StringComparison.Ordinal));
        }
        if (notebook.StartsWith("05", StringComparison.Ordinal))
        {
            Assert.Equal(2, run.Findings.Count(f => f.Claim.StartsWith("A copy of ", StringComparison.Ordinal) && f.Verdict == "confirmed" && f.Observed.EndsWith("(read offline)", StringComparison.Ordinal)));
            Assert.Contains(run.Findings, f => f.Claim.StartsWith("Every backup chain", StringComparison.Ordinal) && f.Verdict == "confirmed" && f.Observed.StartsWith("2 of 2", StringComparison.Ordinal));
        }
        if (notebook.StartsWith("03", StringComparison.Ordinal))
        {
            // The document's HMP `commit all` would have committed vdb too: the lab did not send it, said why,
            // and committed its own layer by node instead.
            var refused = run.Findings.Single(f => f.Claim.StartsWith("3. HMP commit not sent", StringComparison.Ordinal));
            Assert.Contains("data.qcow2", refused.Observed, StringComparison.Ordinal);
            Assert.Contains(run.Findings, f => f.Claim.StartsWith("3. Commit of the lab's layer alone", StringComparison.Ordinal) && f.Verdict == "confirmed");
        }
    }

    private async Task AssertDefinitionNamesTheUsersImagesAsync()
    {
        var disks = await fx.Domain.ListDisksAsync(inactive: true);
        Assert.Equal(fx.Root, disks.Single(d => d.Target == "vda").Source);
        Assert.Equal("qcow2", disks.Single(d => d.Target == "vda").Format);
        Assert.Equal(fx.Data, disks.Single(d => d.Target == "vdb").Source);
        Assert.Empty(await fx.Domain.Snapshots.ListAsync());
    }

    /// <summary>Waits until the running domain's vda is on an overlay that is not the user's, then hashes root.qcow2.</summary>
    private async Task<string> HashRootOnceTakenOverAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var vda = (await fx.Domain.ListDisksAsync(cancellationToken: cancellationToken)).SingleOrDefault(d => d.Target == "vda");
            if (vda is not null && vda.Source != fx.Root && vda.Chain.Contains(fx.Root))
            {
                return await FileHash.Sha256Async(fx.Root, cancellationToken);
            }
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }

    private async Task EnsureStateAsync(bool running)
    {
        var state = await fx.Domain.GetStateAsync();
        if (running && state != DomainState.Running)
        {
            await fx.Domain.StartAsync();
            await fx.Domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
        }
        else if (!running && state != DomainState.ShutOff)
        {
            await fx.Domain.ShutdownAsync(TimeSpan.FromMinutes(2));
        }
    }
}
