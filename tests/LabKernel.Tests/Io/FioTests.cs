using LabKernel.Io;

namespace LabKernel.Tests.Io;

public sealed class FioTests
{
    private static string Sample => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Io", "Samples", "fio-randrw.json"));

    [Fact]
    public void A_report_from_fio_3_33_is_read_with_both_directions_and_latency_percentiles()
    {
        var result = FioResult.Parse(Sample);

        Assert.Equal("fio-3.33", result.Version);
        var job = result.Job;
        Assert.Equal(("randrw-4k", 0), (job.Name, job.Error));
        foreach (var io in new[] { job.Read, job.Write })
        {
            Assert.True(io.Ran);
            Assert.True(io.Iops > 0 && io.BytesPerSecond > 0 && io.Bytes > 0);
            Assert.Equal(io.Ios * 4096, io.Bytes);
            Assert.InRange(io.Runtime, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(3));
            Assert.NotNull(io.P50Latency);
            Assert.True(io.P99Latency >= io.P50Latency);
        }
    }

    [Fact]
    public void Warnings_before_the_report_are_skipped_and_garbage_is_a_one_line_error()
    {
        var withWarning = "fio: this platform does not support process shared mutexes, forcing use of threads\n" + Sample;
        Assert.Equal("randrw-4k", FioResult.Parse(withWarning).Job.Name);

        var none = Assert.Throws<LabException>(() => FioResult.Parse("fio: failed to open file\n"));
        Assert.Contains("no JSON report", none.Message, StringComparison.Ordinal);
        var broken = Assert.Throws<LabException>(() => FioResult.Parse("{\n \"jobs\": [ { \"jobname\": \"x\" } ]\n}"));
        Assert.Contains("could not be read", broken.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', broken.Message);
    }

    [Fact]
    public void A_job_becomes_fios_command_line_as_the_documents_run_it()
    {
        var args = new FioJob { Name = "depth3", Filename = "/dev/vdb", ReadWrite = "randread", Runtime = TimeSpan.FromSeconds(4.2), IoDepth = 8 }.Arguments();

        Assert.Equal(["fio", "--name=depth3", "--filename=/dev/vdb", "--rw=randread", "--bs=4k", "--size=256M", "--direct=1", "--ioengine=libaio",
            "--iodepth=8", "--numjobs=1", "--group_reporting", "--output-format=json", "--runtime=5", "--time_based"], args);
        Assert.DoesNotContain("--time_based", new FioJob { Filename = "/f", Runtime = null }.Arguments());
        // A job file's timeout=: stop at the size or the runtime, whichever comes first.
        var sized = new FioJob { Filename = "/f", Runtime = TimeSpan.FromSeconds(60), TimeBased = false }.Arguments();
        Assert.Contains("--runtime=60", sized);
        Assert.DoesNotContain("--time_based", sized);
        Assert.Throws<LabUsageException>(() => new FioJob { Filename = "/f", ReadWrite = "sideways" }.Arguments());
        Assert.Throws<LabUsageException>(() => new FioJob { Filename = "/f", IoDepth = 0 }.Arguments());
    }

    [Fact]
    public void A_job_that_did_no_IO_did_not_run_so_every_fio_job_did_IO_is_refuted()
    {
        var none = new FioIo(0, 0, 0, 0, TimeSpan.Zero, TimeSpan.Zero, null, null);

        Assert.False(none.Ran);
        Assert.True((none with { Ios = 1, Bytes = 4096 }).Ran);
    }

    [Fact]
    public void A_job_that_stopped_before_its_size_and_its_runtime_did_not_run_to_its_end_so_notebook_04s_check_is_refuted()
    {
        const long size = 256L << 20;
        var runtime = TimeSpan.FromSeconds(10);
        var io = new FioIo(size, 50 << 20, 12800, 65536, TimeSpan.FromSeconds(5.1), TimeSpan.FromMicroseconds(70), null, null);

        Assert.True(io.RanToItsEnd(size, runtime));                                                             // its size moved in 5.1 s
        Assert.True((io with { Bytes = 90L << 20, Runtime = TimeSpan.FromMilliseconds(10_001) }).RanToItsEnd(size, runtime));  // ended by its runtime
        // Cut short: 3 s of 10 and a third of its size (a disk gone mid-run, with fio still exiting 0).
        Assert.False((io with { Bytes = 90L << 20, Runtime = TimeSpan.FromSeconds(3) }).RanToItsEnd(size, runtime));
        Assert.False((io with { Bytes = 0, Ios = 0, Runtime = TimeSpan.Zero }).RanToItsEnd(size, runtime));
    }
}
