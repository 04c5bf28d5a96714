using System.Text;
using LabKernel.Backends;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Backends;

/// <summary>
/// The record a take-over leaves in the run's folder, and when `lab clean` may hand a domain back from it: only a
/// shut-off domain whose every recorded disk still names the lab's overlay in that folder.
/// </summary>
public sealed class TakeOverRecordTests
{
    private const string Folder = "/var/tmp/labnotebooks/01-x-abc";
    private static readonly TakeOverRecord Record = new("web1", [new("vda", "/img/root.qcow2", "qcow2"), new("vdb", "/img/data.raw", "raw")], ["before-lab"]);

    private static DomainDisk Disk(string target, params string[] chain) => new(target, "virtio", "qcow2", chain);

    [Fact]
    public void A_record_round_trips_through_its_json_and_a_truncated_or_foreign_file_is_none()
    {
        var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(Record, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase });
        var back = TakeOverRecord.Parse(json)!;
        Assert.Equal("web1", back.Domain);
        Assert.Equal(Record.Disks, back.Disks);
        Assert.Equal(["before-lab"], back.SnapshotNames);
        Assert.Null(TakeOverRecord.Parse(json.AsSpan(0, json.Length / 2)));
        Assert.Null(TakeOverRecord.Parse(Encoding.UTF8.GetBytes("{\"experiment\":\"01\"}")));
        Assert.Null(TakeOverRecord.Parse(Encoding.UTF8.GetBytes("{\"domain\":\"web1\",\"disks\":[]}")));
    }

    [Fact]
    public void A_shut_off_domain_on_the_labs_overlays_in_the_folder_can_be_handed_back()
    {
        var persistent = new[] { Disk("vda", $"{Folder}/vda-lab.qcow2", "/img/root.qcow2"), Disk("vdb", $"{Folder}/vdb-lab.qcow2", "/img/data.raw") };
        Assert.Null(TakeOverRecord.CannotHandBack(DomainState.ShutOff, persistent, Record, Folder));
    }

    [Fact]
    public void A_running_domain_is_not_handed_back_and_the_line_says_to_shut_it_off()
    {
        var persistent = new[] { Disk("vda", $"{Folder}/vda-lab.qcow2"), Disk("vdb", $"{Folder}/vdb-lab.qcow2") };
        Assert.Equal("domain web1 is running on the lab's overlays in it: shut it off, then lab clean hands it back",
            TakeOverRecord.CannotHandBack(DomainState.Running, persistent, Record, Folder));
    }

    [Fact]
    public void A_domain_whose_definition_changed_since_is_left_as_it_is()
    {
        // The user pointed vdb elsewhere meanwhile (or another run's folder): theirs, not the lab's to change.
        var persistent = new[] { Disk("vda", $"{Folder}/vda-lab.qcow2"), Disk("vdb", "/img/data-new.qcow2") };
        Assert.Equal("domain web1's vdb names /img/data-new.qcow2, not the lab's overlay: its definition changed since, so it is left as it is",
            TakeOverRecord.CannotHandBack(DomainState.ShutOff, persistent, Record, Folder));
        // A folder whose name merely starts like this one's is another folder.
        var other = new[] { Disk("vda", $"{Folder}-2/vda-lab.qcow2"), Disk("vdb", $"{Folder}/vdb-lab.qcow2") };
        Assert.NotNull(TakeOverRecord.CannotHandBack(DomainState.ShutOff, other, Record, Folder));
        Assert.NotNull(TakeOverRecord.CannotHandBack(DomainState.ShutOff, [Disk("vda", $"{Folder}/vda-lab.qcow2")], Record, Folder));
    }
}
