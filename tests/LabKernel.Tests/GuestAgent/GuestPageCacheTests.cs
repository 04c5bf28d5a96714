using LabKernel.GuestAgent;
using LabKernel.Integrity;

namespace LabKernel.Tests.GuestAgent;

public sealed class GuestPageCacheTests
{
    [Fact]
    public void Given_a_guests_proc_meminfo_When_parsed_Then_dirty_and_writeback_are_read_in_KiB()
    {
        const string meminfo = "MemTotal:         995000 kB\nMemFree:          700000 kB\nDirty:              5236 kB\nWriteback:           128 kB\nAnonPages:         10000 kB\n";

        var cache = GuestPageCache.Parse(meminfo);

        Assert.Equal(5236, cache.DirtyKiB);
        Assert.Equal(128, cache.WritebackKiB);
        Assert.Equal((5236 + 128) * 1024L, cache.NotOnDiskBytes);
    }

    [Fact]
    public void Given_meminfo_without_a_dirty_line_When_parsed_Then_the_error_names_the_field()
    {
        var e = Assert.Throws<LabException>(() => GuestPageCache.Parse("MemTotal: 1 kB\nWriteback: 0 kB\n"));
        Assert.Equal("/proc/meminfo has no readable 'Dirty:' line", e.Message);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(9, 18)]
    [InlineData(10, 21)]
    [InlineData(100, 292)]
    [InlineData(1_000_000, 6_888_896)]
    public void Given_a_line_count_When_its_size_is_asked_Then_it_is_the_bytes_of_1_to_k_with_newlines(long lines, long bytes)
    {
        Assert.Equal(bytes, SequenceChecker.BytesOf(lines));
        if (lines <= 1000)
        {
            Assert.Equal(string.Concat(Enumerable.Range(1, (int)lines).Select(i => $"{i}\n")).Length, SequenceChecker.BytesOf(lines));
        }
    }

    [Theory]
    [InlineData(900, 0, 1000, true)]
    [InlineData(600, 300, 1000, true)]   // dirty and under writeback both count
    [InlineData(899, 0, 1000, false)]    // most of the flushed lines had reached the disk: k = 0 is not explained by the cache
    [InlineData(0, 0, 1000, false)]
    [InlineData(0, 0, 0, true)]
    public void Given_the_guests_page_cache_and_the_bytes_a_writer_flushed_When_judged_Then_it_held_most_of_them_only_from_nine_tenths(long dirtyKiB, long writebackKiB, long flushedKiB, bool expected)
    {
        Assert.Equal(expected, new GuestPageCache(dirtyKiB, writebackKiB).HeldMostOf(flushedKiB * 1024));
    }

    [Fact]
    public void Given_a_flushed_size_in_bytes_When_judged_Then_nine_tenths_are_counted_in_whole_bytes_as_the_notebooks_did()
    {
        var flushed = SequenceChecker.BytesOf(22_000);
        var cache = new GuestPageCache(flushed * 9 / 10 / 1024, 0);

        Assert.Equal(cache.NotOnDiskBytes >= flushed * 9 / 10, cache.HeldMostOf(flushed));
        Assert.False(new GuestPageCache(flushed * 9 / 10 / 1024 - 1, 0).HeldMostOf(flushed));
    }
}
