using LabKernel.Backends;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

/// <summary>
/// The library records behind notebook verdicts, fed the readings a misbehaving system gives: each must come out
/// false. (The same records against a real guest: Guests/MemoryRevertTests.)
/// </summary>
public sealed class VerdictEvidenceTests
{
    private static readonly InstantMarkers AtSnapshot = new("WithMemory", "WithMemory", "boot-a");

    [Fact]
    public void A_memory_revert_that_brought_back_disk_memory_and_boot_is_confirmed()
    {
        Assert.True(new RevertEvidence(SnapshotKind.WithMemory, AtSnapshot, AtSnapshot).ReturnedToInstant);
    }

    [Fact]
    public void A_cold_boot_on_the_snapshots_disk_is_refuted_for_a_kind_that_keeps_memory_and_confirmed_for_a_disk_only_kind()
    {
        var coldBoot = new InstantMarkers("WithMemory", "", "boot-b");

        Assert.False(new RevertEvidence(SnapshotKind.WithMemory, AtSnapshot, coldBoot).ReturnedToInstant);
        Assert.False(new RevertEvidence(SnapshotKind.Internal, AtSnapshot, coldBoot).ReturnedToInstant);
        Assert.True(new RevertEvidence(SnapshotKind.DiskOnly, AtSnapshot, coldBoot).ReturnedToInstant);
    }

    [Fact]
    public void A_revert_that_did_nothing_is_refuted_for_every_kind()
    {
        var untouched = new InstantMarkers("after-the-snapshot", "after-the-snapshot", "boot-a");

        foreach (var kind in Enum.GetValues<SnapshotKind>())
        {
            Assert.False(new RevertEvidence(kind, AtSnapshot, untouched).ReturnedToInstant, kind.ToString());
        }
    }

    [Fact]
    public void A_memory_marker_back_under_a_new_boot_id_is_not_a_memory_revert()
    {
        Assert.False(new RevertEvidence(SnapshotKind.WithMemory, AtSnapshot, AtSnapshot with { BootId = "boot-b" }).ReturnedToInstant);
    }

    [Theory]
    [InlineData(0, 4_000_000, 4_000_000, false)]        // exited 0 but flushed nothing more: a short file
    [InlineData(137, 120_000, 4_000_000, false)]        // killed
    [InlineData(0, 4_000_000, 4_000_000, true)]
    public void The_writer_ran_to_the_end_only_when_it_exited_0_with_every_line_flushed(int exit, long lines, long count, bool expected)
    {
        var end = new WriterEnd(exit, exit == 0 && !expected ? lines - 1 : lines, count, TimeSpan.FromSeconds(3), exit == 0 ? "" : "Killed");
        Assert.Equal(expected, end.RanToTheEnd);
    }

    [Theory]
    [InlineData(0, 10, false)]                // the operation ran before the writer's first line
    [InlineData(4_000_000, 4_000_000, false)] // after its last line: an idle guest
    [InlineData(1_000, 4_000_000, false)]     // the writer finished before the operation ended
    [InlineData(1_000, 50_000, true)]
    public void An_operation_ran_under_the_writer_only_when_lines_were_flushed_before_it_and_the_writer_had_not_finished_after_it(long before, long after, bool expected)
    {
        Assert.Equal(expected, new WriterOverlap("snapshot", before, after, 4_000_000).WritingThroughout);
    }
}
