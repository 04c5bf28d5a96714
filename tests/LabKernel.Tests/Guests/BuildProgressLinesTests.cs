using LabKernel.Guests;
using LabKernel.Tests.Host;

namespace LabKernel.Tests.Guests;

public sealed class BuildProgressLinesTests
{
    [Fact]
    public void Given_a_build_with_60_package_lines_When_reported_Then_each_step_is_a_numbered_line_and_packages_are_counted_every_25()
    {
        var clock = new SteppingClock();
        var lines = new List<string>();
        var progress = new BuildProgressLines(lines.Add, clock);

        progress.Report(new GuestBuildProgress("debootstrap", "bookworm (minbase) from http://deb.debian.org/debian"));
        for (var i = 1; i <= 60; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            progress.Report(new GuestBuildProgress("debootstrap", $"Unpacking package{i}..."));
        }
        progress.Report(new GuestBuildProgress("qcow2", "qemu-img convert -O qcow2"));
        progress.Report(new GuestBuildProgress("something-new", "a step the list does not know"));

        Assert.Equal(
        [
            "[guest image    0 s, step 1/6 debootstrap] bookworm (minbase) from http://deb.debian.org/debian",
            "[guest image   25 s, step 1/6 debootstrap] 25 package steps (Unpacking package25...)",
            "[guest image   50 s, step 1/6 debootstrap] 50 package steps (Unpacking package50...)",
            "[guest image   60 s, step 5/6 qcow2] qemu-img convert -O qcow2",
            "[guest image   60 s, something-new] a step the list does not know",
        ], lines);
    }

    [Fact]
    public void Given_per_package_lines_of_every_kind_When_reported_Then_all_of_them_count_not_only_unpacking()
    {
        var lines = new List<string>();
        var progress = new BuildProgressLines(lines.Add, new SteppingClock());

        foreach (var verb in new[] { "Retrieving", "Validating", "Extracting", "Unpacking", "Configuring" })
        {
            for (var i = 0; i < 5; i++)
            {
                progress.Report(new GuestBuildProgress("debootstrap", $"{verb} p{i}"));
            }
        }

        Assert.Equal(["[guest image    0 s, step 1/6 debootstrap] 25 package steps (Configuring p4)"], lines);
    }
}
