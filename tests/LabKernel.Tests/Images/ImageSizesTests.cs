using LabKernel.Images;

namespace LabKernel.Tests.Images;

public sealed class ImageSizesTests
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public void Given_two_steps_When_asking_the_growth_Then_it_is_the_difference_of_the_allocated_bytes()
    {
        var before = new ImageSizes("4. before", [new ImageSize("/run/a.qcow2", 10 * MiB, 5 * MiB, 4 * MiB), new ImageSize("/run/b.qcow2", MiB, MiB, 0)]);
        var after = new ImageSizes("4. after", [new ImageSize("/run/a.qcow2", 80 * MiB, 69 * MiB, 68 * MiB), new ImageSize("/run/b.qcow2", MiB, MiB, 0)]);

        Assert.Equal(64 * MiB, after.GrownSince(before, "/run/a.qcow2"));
        Assert.Equal(0, after.GrownSince(before, "/run/b.qcow2"));
        Assert.Equal(68 * MiB, after["/run/a.qcow2"].DataBytes);
    }

    [Fact]
    public void Given_a_file_not_measured_When_looked_up_Then_a_usage_error_names_it_and_the_step()
    {
        var sizes = new ImageSizes("3. after", []);

        var e = Assert.Throws<LabUsageException>(() => sizes["/run/x.qcow2"]);

        Assert.Contains("/run/x.qcow2", e.Message);
        Assert.Contains("3. after", e.Message);
    }

    [Fact]
    public void Given_recorded_steps_When_listing_a_prefix_Then_the_rows_are_in_MiB_by_file_name()
    {
        var log = new ImageSizeLog();
        log.Record(new ImageSizes("3. before", [new ImageSize("/run/disk.qcow2", 3 * MiB / 2, MiB, MiB / 3)]));
        log.Record(new ImageSizes("4. after", [new ImageSize("/run/m.qcow2", MiB, MiB, MiB)]));

        var rows = log.Steps("3.");

        Assert.Equal([new SizeRow("3. before", "disk.qcow2", 1.5, 1, 0.3)], rows);
        Assert.Equal(2, log.Rows.Count);
    }
}
