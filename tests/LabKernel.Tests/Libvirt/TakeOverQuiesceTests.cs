using LabKernel.Backends;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Libvirt;

/// <summary>
/// The take-over of a running user's domain when the guest agent cannot freeze: libvirt refuses the quiesced
/// snapshot, the lab takes the same snapshot crash-consistent and says so in the take-over finding with libvirt's
/// refusal. No libvirt here: the snapshot call is a stand-in that refuses as libvirt does.
/// </summary>
public sealed class TakeOverQuiesceTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-takeover-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static LibvirtException Refusal() => new("virDomainSnapshotCreateXML", "domain 'mine'", 1, 10,
        "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': failed to freeze /: Operation not supported");

    [Fact]
    public async Task Given_an_agent_that_cannot_freeze_When_the_first_overlays_are_taken_Then_they_are_taken_again_without_quiescing_and_the_finding_says_why()
    {
        var overlays = new[] { Path.Combine(_folder, "o1.qcow2"), Path.Combine(_folder, "vdb-lab.qcow2") };
        var asked = new List<bool>();

        var refusal = await LibvirtLabGuest.TakeFirstOverlaysAsync(quiesce =>
        {
            asked.Add(quiesce);
            return quiesce ? Task.FromException(Refusal()) : Task.CompletedTask;
        }, overlays);

        Assert.Equal([true, false], asked);
        Assert.Equal(Refusal().Message, refusal);
        var takeOver = new DomainTakeOver("mine", "vda", WasRunning: true, Quiesced: refusal is null, refusal) { Disks = ["vda", "vdb"] };
        Assert.Equal(
            "first overlays taken live WITHOUT quiescing (crash-consistent): the guest agent could not freeze: " + Refusal().Message
            + "; every writable disk (vda, vdb) runs on a lab overlay, so nothing reaches your images",
            takeOver.Evidence);
        Assert.DoesNotContain('\n', takeOver.Evidence);
    }

    [Fact]
    public async Task Given_an_agent_that_freezes_When_the_first_overlays_are_taken_Then_one_quiesced_snapshot_is_taken_and_no_refusal_is_reported()
    {
        var asked = new List<bool>();

        var refusal = await LibvirtLabGuest.TakeFirstOverlaysAsync(quiesce =>
        {
            asked.Add(quiesce);
            return Task.CompletedTask;
        }, [Path.Combine(_folder, "o1.qcow2")]);

        Assert.Equal([true], asked);
        Assert.Null(refusal);
        Assert.StartsWith("first overlays taken live, atomically, with the guest's filesystems frozen",
            new DomainTakeOver("mine", "vda", true, true, null).Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_refusal_after_an_overlay_file_was_made_When_the_first_overlays_are_taken_Then_it_is_not_retried_unquiesced()
    {
        var overlay = Path.Combine(_folder, "o1.qcow2");
        var asked = new List<bool>();

        var e = await Assert.ThrowsAsync<LibvirtException>(() => LibvirtLabGuest.TakeFirstOverlaysAsync(quiesce =>
        {
            asked.Add(quiesce);
            File.WriteAllText(overlay, "half made");
            return Task.FromException(Refusal());
        }, [overlay]));

        Assert.Equal([true], asked);
        Assert.Equal(Refusal().Message, e.Message);
    }

    [Fact]
    public async Task Given_a_failure_that_is_not_libvirts_When_the_first_overlays_are_taken_Then_it_is_not_retried_unquiesced()
    {
        var asked = new List<bool>();

        await Assert.ThrowsAsync<OperationCanceledException>(() => LibvirtLabGuest.TakeFirstOverlaysAsync(quiesce =>
        {
            asked.Add(quiesce);
            return Task.FromException(new OperationCanceledException());
        }, [Path.Combine(_folder, "o1.qcow2")]));

        Assert.Equal([true], asked);
    }
}
