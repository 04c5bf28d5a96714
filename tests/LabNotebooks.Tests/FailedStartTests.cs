using LabKernel;
using LabKernel.Backends;
using LabKernel.Host;
using LabNotebooks;

namespace LabNotebooks.Tests;

/// <summary>
/// A start that failed mid take-over (the domain's libvirtd gone after the domain moved onto the lab's overlays) must
/// not delete those overlays: the domain's definition may still name them, and `lab clean` hands it back from the
/// record beside them. CI saw the folder deleted and the researcher's domain left naming a missing vdb-lab.qcow2.
/// </summary>
public sealed class FailedStartTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-failed-start-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Given_the_take_over_record_still_there_Then_the_folder_is_kept_naming_the_domain()
    {
        await new TakeOverRecord("labremote-1", [new TakeOverDisk("vda", "/images/root.qcow2", "qcow2")], []).WriteAsync(LocalHost.Instance, _folder);

        var why = await Lab.WhyKeepAfterFailedStartAsync(LocalHost.Instance, _folder);

        Assert.NotNull(why);
        Assert.Contains("domain 'labremote-1' could not be undone", why, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_no_record_Then_the_folder_is_cleaned_up()
    {
        // A lab-made domain, or a take-over undone (its record deleted once the definition named the user's images).
        Assert.Null(await Lab.WhyKeepAfterFailedStartAsync(LocalHost.Instance, _folder));
    }

    [Fact]
    public async Task Given_a_record_that_is_not_one_Then_the_folder_is_kept_all_the_same()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, TakeOverRecord.FileName), "{ truncated");

        Assert.Contains("(unreadable record)", await Lab.WhyKeepAfterFailedStartAsync(LocalHost.Instance, _folder), StringComparison.Ordinal);
    }
}
