using LabKernel.GuestAgent;
using LabKernel.IntegrationTests.Guests;
using LabKernel.Io;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Io;

/// <summary>The guest image's fio, run through the agent with O_DIRECT and libaio as the documents do.</summary>
[Collection(GuestCollection.Name)]
public sealed class FioGuestTests(GuestFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Given_a_file_in_the_guest_When_fio_writes_then_reads_it_Then_both_reports_are_parsed_with_work_done()
    {
        var agent = fixture.Guest.Machine.Agent;
        try
        {
            var write = await Fio.RunAsync(agent, new FioJob { Name = "w", Filename = "/root/fio.bin", ReadWrite = "randwrite", Size = "32M", Runtime = TimeSpan.FromSeconds(2) });
            var read = await Fio.RunAsync(agent, new FioJob { Name = "r", Filename = "/root/fio.bin", ReadWrite = "randread", Size = "32M", Runtime = TimeSpan.FromSeconds(2) });
            output.WriteLine($"{write.Version}: randwrite {write.Job.Write.Iops:0} IOPS (p99 {write.Job.Write.P99Latency?.TotalMilliseconds:0.00} ms), randread {read.Job.Read.Iops:0} IOPS");

            Assert.StartsWith("fio-", write.Version, StringComparison.Ordinal);
            Assert.True(write.Job.Write.Ran && !write.Job.Read.Ran);
            Assert.True(read.Job.Read.Ran && !read.Job.Write.Ran);
            Assert.True(write.Job.Write.Iops > 0 && read.Job.Read.Iops > 0);
            Assert.InRange(write.Job.Write.Runtime, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
        }
        finally
        {
            await agent.ExecAsync(["rm", "-f", "/root/fio.bin"]);
        }
    }

    [Fact]
    public async Task Given_a_file_fio_cannot_open_When_run_Then_the_error_is_one_line_with_fios_words()
    {
        var e = await Assert.ThrowsAsync<LabException>(() => Fio.RunAsync(fixture.Guest.Machine.Agent,
            new FioJob { Filename = "/proc/fio.bin", Size = "1M", Runtime = TimeSpan.FromSeconds(1) }));
        Assert.Contains("/proc/fio.bin", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
