using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Integrity;
using LabKernel.IntegrationTests.Guests;

namespace LabKernel.IntegrationTests.Integrity;

[Collection(GuestCollection.Name)]
public sealed class IntegrityWorkloadTests(GuestFixture fixture)
{
    private GuestAgentClient Agent => fixture.Guest.Machine.Agent;

    [Theory]
    [InlineData(SequenceWriterKind.Awk, 200_000)]
    [InlineData(SequenceWriterKind.ShellLoop, 3_000)]
    public async Task Given_a_writer_in_the_guest_When_it_finishes_Then_the_file_holds_exactly_1_to_N(SequenceWriterKind kind, long count)
    {
        var path = $"/root/seq-{kind}.txt";
        var writer = await SequenceWriter.StartAsync(Agent, new SequenceWriterOptions { Path = path, Count = count, Kind = kind, FlushEvery = 500 });
        var reached = await writer.WaitForLinesAsync(count / 2, TimeSpan.FromMinutes(2));
        Assert.True(reached >= count / 2);
        await writer.WaitAsync(TimeSpan.FromMinutes(5));
        var check = SequenceChecker.Check(await Agent.ReadFileAsync(path), count);
        Assert.True(check.Complete, check.Summary);
        Assert.Equal(count, writer.Samples[^1].Lines);
        Assert.True(writer.Samples.Count >= 2);
    }

    [Fact]
    public async Task Given_file_operations_in_the_guest_When_verified_through_the_agent_Then_every_path_matches_and_a_tampered_file_is_caught()
    {
        var work = await FileOpsWorkload.RunAsync(Agent, "/root/fileops", 40, seed: 3);
        var view = new GuestFileView(Agent);
        var ok = await work.VerifyAsync(view);
        Assert.True(ok.AllOk, ok.Summary);
        var (present, absent) = work.ExpectedState();
        Assert.NotEmpty(present);
        Assert.NotEmpty(absent);

        var victim = work.Operations.Last(o => o.Sha256 is not null).Path;
        await Agent.ExecAsync(["/bin/sh", "-c", $"printf x >> '{victim}'"], new GuestExecOptions { Check = true });
        var bad = await work.VerifyAsync(view);
        Assert.False(bad.AllOk);
        Assert.Equal(victim, bad.Findings.Single(f => !f.Ok).Path);
    }
}

public sealed class OfflineLayerReaderTests
{
    [Fact]
    public async Task Given_a_guest_that_wrote_files_When_its_layer_is_read_offline_Then_the_files_match_and_the_layer_is_untouched()
    {
        var work = Directory.CreateTempSubdirectory("lab-offline").FullName;
        try
        {
            FileOpsWorkload ops;
            string root;
            await using (var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { WorkFolder = work, Name = "offline" }))
            {
                await guest.Machine.Agent.ExecAsync(["/bin/sh", "-c", "seq 1 50000 > /root/num.txt"], new GuestExecOptions { Check = true });
                ops = await FileOpsWorkload.RunAsync(guest.Machine.Agent, "/root/ops", 25, seed: 11);
                root = guest.RootDisk;
                // A crash-consistent view: kill QEMU rather than shutting down, so the journal may need replaying.
                await guest.Machine.Agent.ExecAsync(["sync"]);
                await guest.Machine.KillAsync();
            }
            var before = await File.ReadAllBytesAsync(root);
            await using (var reader = await OfflineLayerReader.OpenAsync(root, work))
            {
                var check = SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), 50000);
                Assert.True(check.Complete, check.Summary);
                var verification = await ops.VerifyAsync(reader);
                Assert.True(verification.AllOk, verification.Summary);
                Assert.Contains("num.txt", await reader.ListAsync("/root"));
                Assert.False(await reader.ExistsAsync("/root/never-written"));
                await Assert.ThrowsAsync<LabException>(() => reader.ReadFileAsync("/root/never-written"));
            }
            Assert.Equal(before, await File.ReadAllBytesAsync(root));
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Theory]
    [InlineData("mbr")]
    [InlineData("gpt")]
    public async Task Given_a_partitioned_disk_like_a_users_VM_When_read_offline_Then_files_come_from_its_ext4_partition(string scheme)
    {
        var work = Directory.CreateTempSubdirectory("lab-offline-part").FullName;
        try
        {
            // An ext4 filesystem made from a folder (mkfs.ext4 -d), placed in partition 2 behind a small partition 1.
            var content = Directory.CreateDirectory(Path.Combine(work, "content", "root")).FullName;
            await File.WriteAllTextAsync(Path.Combine(content, "num.txt"), string.Concat(Enumerable.Range(1, 1000).Select(i => $"{i}\n")));
            var fs = Path.Combine(work, "fs.raw");
            await LabKernel.Processes.ProcessRunner.RunAsync("mkfs.ext4", ["-q", "-F", "-d", Path.Combine(work, "content"), fs, "16M"]);
            var disk = Path.Combine(work, "disk.raw");
            const long Mi = 1 << 20;
            await using (var d = File.Create(disk))
            {
                d.SetLength(24 * Mi);
                var fsBytes = await File.ReadAllBytesAsync(fs);
                d.Position = 4 * Mi;
                await d.WriteAsync(fsBytes);
                PartitionTable.Write(d, scheme, [(1 * Mi, 2 * Mi), (4 * Mi, 16 * Mi)]);
            }
            var qcow2 = Path.Combine(work, "user-disk.qcow2");
            await LabKernel.Processes.ProcessRunner.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", disk, qcow2]);
            var before = await File.ReadAllBytesAsync(qcow2);

            await using (var reader = await OfflineLayerReader.OpenAsync(qcow2, work))
            {
                Assert.EndsWith("partition2.raw", reader.RawCopy, StringComparison.Ordinal);
                var check = SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), 1000);
                Assert.True(check.Complete, check.Summary);
            }
            Assert.Equal(before, await File.ReadAllBytesAsync(qcow2));
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }
}
