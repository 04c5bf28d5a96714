using LabKernel.Block;
using LabKernel.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// The verdicts notebooks 03 and 05 draw from a job's end: where the disk is after a cancel or a complete, a shallow
/// mirror against a full one, an increment against the full backup, a job that never moved again after an outage.
/// Each refuted on the fault it guards against.
/// </summary>
public sealed class JobVerdictTests
{
    private const long MiB = 1 << 20;
    private const string Disk = "/run/x/disk.qcow2";
    private const string Mirror = "/run/x/mirror-a.qcow2";

    private static BlockJobResult Job(bool cancelled, long offset = 100, long length = 100) =>
        new("job-1", "mirror", cancelled, !cancelled, offset, length, TimeSpan.FromSeconds(1), []);

    private static LiveChain On(string active) => new("disk0", "disk0-dev", [new LiveLayer("n0", active, "qcow2", null)]);

    private static BlockJobRun Run(bool cancelled, string activeAfter) => new(Job(cancelled), On(Disk), On(activeAfter), []);

    [Fact]
    public void Given_a_mirror_cancelled_at_READY_with_the_disk_where_it_was_Then_it_stayed_and_did_not_pivot()
    {
        var run = Run(cancelled: true, Disk);

        Assert.True(run.StayedOn(Disk));
        Assert.False(run.PivotedOnto(Mirror));
    }

    [Fact]
    public void Given_a_job_that_pivoted_when_it_should_have_been_cancelled_Then_stayed_on_the_disk_is_refuted()
    {
        Assert.False(Run(cancelled: false, Mirror).StayedOn(Disk));
        // Reported cancelled, yet QEMU's chain names the mirror: the chain decides.
        Assert.False(Run(cancelled: true, Mirror).StayedOn(Disk));
    }

    [Fact]
    public void Given_a_complete_that_left_the_disk_on_the_original_or_was_cancelled_Then_pivoted_onto_the_mirror_is_refuted()
    {
        Assert.True(Run(cancelled: false, Mirror).PivotedOnto(Mirror));
        Assert.False(Run(cancelled: false, Disk).PivotedOnto(Mirror));
        Assert.False(Run(cancelled: true, Mirror).PivotedOnto(Mirror));
    }

    [Theory]
    [InlineData(70, 650, true)]
    [InlineData(162, 650, true)]
    [InlineData(163, 650, false)]  // 163 x 4 > 650: more than the top
    [InlineData(650, 650, false)]  // a "shallow" mirror that copied the whole disk (sync=full by mistake)
    public void Given_the_bytes_a_shallow_and_a_full_mirror_copied_Then_only_the_top_under_a_quarter_is_confirmed(long shallowMiB, long fullMiB, bool expected)
    {
        Assert.Equal(expected, ShallowMirror.CopiedOnlyTheTop(Job(true, shallowMiB * MiB, shallowMiB * MiB), Job(true, fullMiB * MiB, fullMiB * MiB)));
    }

    [Theory]
    [InlineData(16, 16, 620, true)]
    [InlineData(18, 16, 620, true)]
    [InlineData(0, 16, 620, false)]     // a dropped increment: its target holds nothing
    [InlineData(12, 16, 620, false)]    // less than the guest's new data
    [InlineData(200, 200, 620, false)]  // as much as a quarter of the full backup's data or more
    [InlineData(154, 16, 620, true)]    // 620 / 4 = 155
    [InlineData(155, 16, 620, false)]
    public void Given_an_increment_When_judged_by_what_its_target_holds_against_the_new_data_and_the_full_backup_Then_it_holds_the_new_data_only_or_not(long targetMiB, long writtenMiB, long fullMiB, bool expected)
    {
        Assert.Equal(expected, BackupResult.HoldsTheNewDataOnly(targetMiB * MiB, writtenMiB * MiB, fullMiB * MiB));
    }

    [Fact]
    public void Given_a_job_that_stays_flat_after_the_storage_is_back_When_analysed_Then_it_never_moved_again()
    {
        var t0 = new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
        BlockJobProgress S(double seconds, long offset) => new("mirror-2", JobStatus.Running, offset, 8000, t0.AddSeconds(seconds), "ok", "sample");

        // Cut at 2 s, back at 6 s; the offset never passes 140 again (03's "moves again" refuted).
        var p = OutageProgress.Of([S(1, 100), S(3, 140), S(4, 140), S(7, 140), S(9, 140), S(12, 140)], t0.AddSeconds(2), t0.AddSeconds(6), offsetAtCut: 130);

        Assert.True(p.StoodStill);
        Assert.Null(p.MovingAgainAt);
    }

    [Fact]
    public void Given_QEMUs_chain_after_a_commit_When_it_still_lists_the_committed_layer_or_the_order_differs_Then_it_is_not_the_expected_chain()
    {
        static LiveChain Chain(params string[] files) => new("disk0", "disk0-dev", files.Select((f, i) => new LiveLayer($"n{i}", f, "qcow2", null)).ToList());
        string[] expected = ["/run/x/overlay3.qcow2", "/run/x/overlay1.qcow2", "/cache/base.qcow2"];

        Assert.True(Chain(expected).IsExactly(expected));
        Assert.False(Chain("/run/x/overlay3.qcow2", "/run/x/overlay2.qcow2", "/run/x/overlay1.qcow2", "/cache/base.qcow2").IsExactly(expected)); // commit did not shorten it
        Assert.False(Chain("/run/x/overlay3.qcow2", "/cache/base.qcow2").IsExactly(expected));
        Assert.False(Chain("/run/x/overlay1.qcow2", "/run/x/overlay3.qcow2", "/cache/base.qcow2").IsExactly(expected));
    }

    private static LiveChain On(params string[] files) => new("disk0", "disk0-dev", files.Select((f, i) => new LiveLayer($"n{i}", f, "qcow2", null)).ToList());

    [Fact]
    public void Given_a_reboot_after_the_second_pivot_When_QEMU_reopened_another_image_or_the_file_changed_Then_it_is_not_still_on_the_newest()
    {
        const string mirrorB = "/run/x/mirror-b.qcow2";
        Assert.True(JobEnds.StillOnAfterReboot(On(mirrorB), mirrorB, "abc", "abc"));
        Assert.False(JobEnds.StillOnAfterReboot(On("/run/x/mirror-a.qcow2"), mirrorB, "abc", "abc")); // back on the first mirror
        Assert.False(JobEnds.StillOnAfterReboot(On(mirrorB), mirrorB, "abc", "abd"));                 // the dd file's bytes changed
        Assert.False(JobEnds.StillOnAfterReboot(On(mirrorB), mirrorB, "abc", ""));                    // the file is gone
        Assert.False(JobEnds.StillOnAfterReboot(On(mirrorB), mirrorB, "", ""));                       // nothing was read before
    }

    [Fact]
    public void Given_the_originals_moved_away_When_the_guests_write_failed_or_the_disk_is_elsewhere_Then_it_did_not_keep_writing()
    {
        const string mirrorB = "/run/x/mirror-b.qcow2";
        Assert.True(JobEnds.KeptWriting(0, On(mirrorB), mirrorB));
        Assert.False(JobEnds.KeptWriting(1, On(mirrorB), mirrorB));                              // dd: Input/output error
        Assert.False(JobEnds.KeptWriting(0, On("/run/x/moved/vm-base-moved.qcow2"), mirrorB));   // still on the moved original
    }

    [Fact]
    public void Given_an_active_commit_When_the_top_is_still_in_the_chain_or_the_guest_is_elsewhere_Then_it_did_not_merge()
    {
        const string snap3 = "/run/x/snap3.qcow2", snap4 = "/run/x/snap4.qcow2";
        Assert.True(On(snap3).IsExactly([snap3]));
        Assert.False(On(snap4, snap3).IsExactly([snap3]));  // the commit never pivoted: still on the top
        Assert.False(On(snap3, "/run/x/snap2.qcow2").IsExactly([snap3]));  // a backing file came back under it
    }

    [Fact]
    public void Given_notebook_04s_chain_When_a_snapshot_is_missing_or_went_onto_another_file_Then_it_is_not_the_chain_of_that_depth()
    {
        string[] layers = ["/run/x/data.qcow2", "/run/x/snap1.qcow2", "/run/x/snap2.qcow2"];  // base first, as the notebook lists them
        Assert.True(On("/run/x/snap2.qcow2", "/run/x/snap1.qcow2", "/run/x/data.qcow2").IsExactly(Enumerable.Reverse(layers)));
        Assert.False(On("/run/x/snap1.qcow2", "/run/x/data.qcow2").IsExactly(Enumerable.Reverse(layers)));                             // one snapshot short
        Assert.False(On("/run/x/other.qcow2", "/run/x/snap1.qcow2", "/run/x/data.qcow2").IsExactly(Enumerable.Reverse(layers)));      // right depth, another file
    }
}
