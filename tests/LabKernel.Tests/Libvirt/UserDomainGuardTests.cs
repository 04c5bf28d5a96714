using LabKernel.Backends;
using LabKernel.Host;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Libvirt;

/// <summary>
/// What libvirt writes on the lab's behalf in a researcher's domain: an internal snapshot (taken, reverted or deleted)
/// writes every writable qcow2 disk, so the guard is asked for each of them; the take-over puts a lab overlay on every
/// writable disk; the hand-back evidence covers every image and says which one changed.
/// </summary>
public sealed class UserDomainGuardTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-guard-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string DomainXmlWith(params string[] disks) =>
        $"<domain type='qemu'><name>mine</name><devices>{string.Concat(disks)}</devices></domain>";

    private static string FileDisk(string target, string file, string format = "qcow2", bool readOnly = false) =>
        $"<disk type='file' device='disk'><driver name='qemu' type='{format}'/><source file='{file}'/><target dev='{target}' bus='virtio'/>{(readOnly ? "<readonly/>" : "")}</disk>";

    [Fact]
    public void Given_a_domain_whose_second_qcow2_disk_the_lab_did_not_make_When_an_internal_snapshot_is_guarded_Then_it_is_refused_naming_that_disk()
    {
        var labOverlay = Path.Combine(_folder, "overlay1.qcow2");
        LabFiles.MarkCreated(labOverlay);
        var theirs = Path.Combine(_folder, "data.qcow2");
        var disks = DomainXml.ParseDisks(DomainXmlWith(FileDisk("vda", labOverlay), FileDisk("vdb", theirs)));

        var written = LibvirtSnapshots.ImagesAnInternalSnapshotWrites(disks);
        var e = Assert.Throws<ForeignImageException>(() => LabFiles.EnsureMayModifyAll(written, "store internal snapshot 's' of domain 'mine' inside its disks"));

        Assert.Equal([labOverlay, theirs], written);
        Assert.Equal(theirs, e.Path);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Given_raw_read_only_and_lab_made_disks_When_an_internal_snapshot_is_guarded_Then_only_writable_qcow2_images_are_asked_for_and_it_passes()
    {
        var labOverlay = Path.Combine(_folder, "overlay1.qcow2");
        LabFiles.MarkCreated(labOverlay);
        var disks = DomainXml.ParseDisks(DomainXmlWith(FileDisk("vda", labOverlay), FileDisk("vdb", "/theirs/raw.img", "raw"), FileDisk("vdc", "/theirs/ro.qcow2", readOnly: true)));

        var written = LibvirtSnapshots.ImagesAnInternalSnapshotWrites(disks);

        Assert.Equal([labOverlay], written);
        LabFiles.EnsureMayModifyAll(written, "store an internal snapshot");
    }

    [Fact]
    public void Given_an_image_the_caller_named_When_guarded_Then_it_is_allowed_and_an_unnamed_one_still_refused()
    {
        var named = Path.Combine(_folder, "root.qcow2");
        var unnamed = Path.Combine(_folder, "data.qcow2");

        LabFiles.EnsureMayModifyAll([named], "store an internal snapshot", [named]);
        var e = Assert.Throws<ForeignImageException>(() => LabFiles.EnsureMayModifyAll([named, unnamed], "store an internal snapshot", [named]));

        Assert.Equal(unnamed, e.Path);
    }

    [Fact]
    public void Given_a_domain_with_a_data_disk_a_read_only_disk_and_an_empty_one_When_the_lab_takes_it_over_Then_every_writable_disk_with_a_medium_gets_an_overlay()
    {
        var disks = DomainXml.ParseDisks(DomainXmlWith(
            FileDisk("vda", "/theirs/root.qcow2"), FileDisk("vdb", "/theirs/data.raw", "raw"), FileDisk("vdc", "/theirs/ro.qcow2", readOnly: true),
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><target dev='vdd' bus='virtio'/></disk>",
            "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/theirs'/><target dev='vde' bus='virtio'/></disk>"));

        var covered = LibvirtLabGuest.DisksToCover("mine", disks, "vda");

        Assert.Equal(["vda", "vdb", "vde"], covered.Select(d => d.Target));
    }

    [Fact]
    public void Given_a_writable_network_disk_When_the_lab_takes_the_domain_over_Then_a_one_line_error_says_it_cannot_cover_it()
    {
        var disks = DomainXml.ParseDisks(DomainXmlWith(
            FileDisk("vda", "/theirs/root.qcow2"),
            "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='x'><host name='h' port='10809'/></source><target dev='vdb' bus='virtio'/></disk>"));

        var e = Assert.Throws<LabUsageException>(() => LibvirtLabGuest.DisksToCover("mine", disks, "vda"));

        Assert.Contains("disk vdb is a network disk", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Given_hashes_at_take_over_When_one_image_of_another_disk_changed_by_hand_back_Then_the_evidence_is_refuted_and_names_it()
    {
        var root = Path.Combine(_folder, "root.qcow2");
        var data = Path.Combine(_folder, "data-golden.raw");
        await File.WriteAllTextAsync(root, "root");
        await File.WriteAllTextAsync(data, "data");
        var atTakeOver = await ImageHashes.TakeAsync([("vda", root), ("vdb", data)]);
        await File.WriteAllTextAsync(data, "dat4");
        var atHandBack = await ImageHashes.TakeAsync(atTakeOver.Images);

        var handBack = new DomainHandBack("mine", "vda", atTakeOver.Compare(atHandBack), atHandBack.Elapsed, atHandBack.Bytes, "");

        Assert.False(handBack.ImagesUnchanged);
        Assert.Equal("Your domain's images (vda, vdb) were not written between take-over and hand-back", handBack.Claim);
        Assert.StartsWith("1 of 2 images changed: data-golden.raw (vdb)", handBack.Evidence, StringComparison.Ordinal);
        var findings = new LabKernel.Experiments.Findings();
        findings.Check(handBack.Claim, handBack.ImagesUnchanged, handBack.Evidence);
        Assert.Equal("refuted", findings.Rows.Single().Verdict);
    }

    [Fact]
    public async Task Given_hashes_at_take_over_When_nothing_changed_Then_the_evidence_confirms_and_counts_every_image()
    {
        var root = Path.Combine(_folder, "root.qcow2");
        await File.WriteAllTextAsync(root, "root");
        var atTakeOver = await ImageHashes.TakeAsync([("vda", root)]);

        var handBack = new DomainHandBack("mine", "vda", atTakeOver.Compare(await ImageHashes.TakeAsync(atTakeOver.Images)), TimeSpan.Zero, 4, "");

        Assert.True(handBack.ImagesUnchanged);
        Assert.StartsWith("all 1 images the same SHA-256", handBack.Evidence, StringComparison.Ordinal);
    }
}
