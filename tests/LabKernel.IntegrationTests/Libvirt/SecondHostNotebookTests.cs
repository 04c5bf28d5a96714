using LabKernel.Guests;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Libvirt;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// Notebooks 01-06 on a researcher's running two-disk domain on the second hypervisor (<see cref="SecondHost"/>), with
/// a second host of their own: this class uses no libvirtd of this machine, so scripts/test runs it in a lane of its
/// own beside the others (<see cref="Lanes.FromTheStart"/>), while <see cref="SecondHostTests"/>, which also sweep
/// onto this machine's libvirtd, stay in lane B. Notebook 01 reaches the host's libvirtd over TLS
/// (<see cref="SecondHost.TlsUri"/>, its files over the URI's <c>lab_ssh=</c>), the others over SSH; 01 over
/// <c>qemu+ssh://</c> there is <see cref="SecondHostTests"/>' sweep.
/// </summary>
[Collection(SecondHostNotebooksCollection.Name)]
[Trait(Lanes.Name, Lanes.FromTheStart)]
public sealed class SecondHostNotebookTests(SecondHost host, ITestOutputHelper output) : IAsyncLifetime
{
    public Task InitializeAsync() => host.EnsureUsersDomainDefinedAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Given_a_running_domain_on_the_second_host_When_notebooks_01_to_06_run_on_it_01_over_TLS_Then_their_verdicts_hold_its_images_keep_their_bytes_and_the_kept_chains_check_clean_there()
    {
        await host.EnsureUsersDomainRunningAsync();
        // The guest writes root.qcow2 itself while it runs on it; every other image of the domain it never writes.
        var untouched = host.Images.Where(i => !i.EndsWith("/root.qcow2", StringComparison.Ordinal)).ToList();
        var before = await host.HashImagesAsync();
        var hostFolder = Path.Combine(host.Folder, "lab");
        foreach (var (notebook, parameters) in UserDisksTests.Runs)
        {
            var uri = notebook.StartsWith("01", StringComparison.Ordinal) ? host.TlsUri : host.Uri;
            using var run = await NotebookRun.RunAsync(notebook, [.. parameters, "Backend", "libvirt", "Domain", host.DomainName, "LibvirtUri", uri, "HostFolder", hostFolder]);
            Assert.True(run.ExitCode == 0, $"{notebook}: {run.FirstError()}");
            Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" || f.Verdict == "refuted" && f.Claim.StartsWith("Reverting the WithMemory", StringComparison.Ordinal),
                $"{notebook}: {f.Claim}: {f.Observed} ({f.Verdict})"));
            if (notebook.StartsWith("06", StringComparison.Ordinal))
            {
                // Pings over SSH are as long as a small guest's memory-snapshot pause: shown, not judged, there.
                Assert.Equal("info", run.Findings.Single(f => f.Claim == "A snapshot with memory pauses the guest while memory is saved (3)").Verdict);
            }
            // The run says which connection it drove the domain over (lab.Describe()): TLS for 01.
            Assert.Contains($"on {uri.Split('?')[0]}", await File.ReadAllTextAsync(run.Executed));
            var handBack = run.Findings.Single(f => f.Claim == "Your domain's images (vda, vdb) were not written between take-over and hand-back");
            Assert.Equal("confirmed", handBack.Verdict);
            output.WriteLine($"{notebook} over {uri.Split(':')[0]}: {run.Findings.Count} findings; {handBack.Observed}");
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
            // qemu-img check accepts there (here the folder is a read-only mount: a local write there fails the run).
            var kept = (await host.RunAsync($"find {ShellQuote.Quote(hostFolder)} -name '*.qcow2'")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(kept);
            foreach (var image in kept)
            {
                Assert.True((await LabKernel.Images.QemuImg.On(host.Shell).CheckAsync(image)).IsClean, $"{notebook}: {image} on the second host");
            }
            await host.RunAsync($"rm -rf {ShellQuote.Quote(hostFolder)}");
        }
    }

    /// <summary>
    /// No domain of the researcher's: the lab makes its own on the second host, from its guest image copied there once
    /// (over SFTP, checked by SHA-256, read-only) under HostFolder's <c>.lab-images</c>; nothing of it is on this
    /// machine's side of the folder, and the domain is gone after the run. Then 04 there, which boots that domain
    /// again on layers of that host. (02, 03, 05 and 06 also ran to exit 0 there once by hand: 03's and 05's copies
    /// are read offline there, as on a researcher's domain.)
    /// </summary>
    [Fact]
    public async Task Given_no_domain_of_the_researchers_When_notebooks_01_and_04_run_on_the_second_host_Then_the_lab_makes_its_own_domain_there_from_a_checked_copy_of_its_image_and_removes_it()
    {
        var hostFolder = Path.Combine(host.Folder, "lab-made");
        using var run = await NotebookRun.RunAsync("01-live-snapshot-integrity", [.. SmallScale.Notebook01, "Backend", "libvirt", "LibvirtUri", host.Uri, "HostFolder", hostFolder]);

        Assert.True(run.ExitCode == 0, run.FirstError());
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains($"the embedded guest as libvirt domain 'lab-", await File.ReadAllTextAsync(run.Executed));
        Assert.Contains($"on {host.Uri.Split('?')[0]}", await File.ReadAllTextAsync(run.Executed));
        // The image there is this machine's, byte for byte, and read-only; its checked SHA-256 is recorded beside it.
        var image = await GuestImageBuilder.EnsureAsync();
        var local = (await LabKernel.Host.FileHash.Sha256Async(image.BaseImage)).ToLowerInvariant();
        var copy = $"{hostFolder}/{HostGuestImages.FolderName}/{Path.GetFileName(image.Directory)}-{local[..12]}";
        Assert.Equal(local, await host.Shell.Sha256Async($"{copy}/base.qcow2"));
        Assert.Equal(local, (await host.RunAsync($"cat {ShellQuote.Quote(copy + "/base.qcow2.sha256")}")).Trim());
        Assert.Equal("444", (await host.RunAsync($"stat -c %a {ShellQuote.Quote(copy + "/base.qcow2")}")).Trim());
        // A second start reuses the copy: nothing is sent again.
        var stamp = await host.RunAsync($"stat -c %Y.%i {ShellQuote.Quote(copy + "/base.qcow2")}");
        var again = await HostGuestImages.EnsureOnAsync(host.Shell, image, hostFolder);
        Assert.Equal(copy, again.Directory);
        Assert.Equal(stamp, await host.RunAsync($"stat -c %Y.%i {ShellQuote.Quote(copy + "/base.qcow2")}"));
        // The domain the lab made is gone, the researcher's is still there. (The same folder on this machine is a
        // read-only mount: a file the lab made there locally would have failed the run.)
        await using var connection = await LibvirtConnection.OpenAsync(host.Uri);
        Assert.Equal([host.DomainName], (await connection.ListDomainNamesAsync()).Order());

        // 04 there boots its lab-made domain again on each layer it reverts to (files of that host, the lab's own) and
        // runs fio on a data disk made there.
        using var run04 = await NotebookRun.RunAsync("04-snapshot-chain-io", [.. UserDisksTests.Runs.Single(r => r.Notebook.StartsWith("04", StringComparison.Ordinal)).Parameters,
            "Backend", "libvirt", "LibvirtUri", host.Uri, "HostFolder", hostFolder]);
        Assert.True(run04.ExitCode == 0, run04.FirstError());
        Assert.All(run04.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"04: {f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Equal([host.DomainName], (await connection.ListDomainNamesAsync()).Order());
        // lab doctor / clean do not count the image copy as a run folder or as someone else's.
        var leftovers = await LabKernel.Diagnostics.HostLeftovers.FindAsync(host.Shell, host.Uri, hostFolder);
        Assert.Equal(0, leftovers.Foreign);
        Assert.All(leftovers.Runs, r => Assert.True(r.Kept, $"{r.Folder} is not the test's kept run"));
        await host.RunAsync($"chmod -R u+w {ShellQuote.Quote(hostFolder)} && rm -rf {ShellQuote.Quote(hostFolder)}");
    }
}

[CollectionDefinition(Name)]
public sealed class SecondHostNotebooksCollection : ICollectionFixture<SecondHost>
{
    public const string Name = "a second hypervisor of its own, for the six notebooks";
}
