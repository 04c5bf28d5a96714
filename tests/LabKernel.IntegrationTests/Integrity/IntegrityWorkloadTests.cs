using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Processes;
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
    public async Task Given_a_guest_that_wrote_files_When_its_layer_is_read_offline_through_each_view_Then_the_files_match_and_the_layer_is_untouched()
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
                await guest.Machine.Agent.ExecAsync(["sync"]);
                // The FUSE view opens a layer a running QEMU holds for writing (shared, read-only, as qemu-img -U).
                await using (var running = await OfflineLayerReader.OpenAsync(root, work, view: OfflineView.Fuse))
                {
                    Assert.True(SequenceChecker.Check(await running.ReadFileAsync("/root/num.txt"), 50000).Complete);
                }
                Assert.Equal("1", (await guest.Machine.Agent.ExecAsync(["/bin/sh", "-c", "head -n 1 /root/num.txt"], new GuestExecOptions { Check = true })).StandardOutput.Trim());
                // A crash-consistent view: kill QEMU rather than shutting down, so the journal may need replaying.
                await guest.Machine.KillAsync();
            }
            var before = await File.ReadAllBytesAsync(root);
            foreach (var view in new[] { OfflineView.Fuse, OfflineView.Copy })
            {
                await using (var reader = await OfflineLayerReader.OpenAsync(root, work, view: view))
                {
                    Assert.Equal(view, reader.View);
                    Assert.Null(reader.ViewNote);
                    var check = SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), 50000);
                    Assert.True(check.Complete, check.Summary);
                    var verification = await ops.VerifyAsync(reader);
                    Assert.True(verification.AllOk, verification.Summary);
                    Assert.Contains("num.txt", await reader.ListAsync("/root"));
                    Assert.False(await reader.ExistsAsync("/root/never-written"));
                    await Assert.ThrowsAsync<LabException>(() => reader.ReadFileAsync("/root/never-written"));
                    Assert.True((await reader.CheckFilesystemAsync()).Clean);
                }
                Assert.Equal(before, await File.ReadAllBytesAsync(root));
            }
            Assert.Empty(MountsUnder(work));
            Assert.Empty(Directory.GetDirectories(work, "layer-read-*"));
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Theory]
    [InlineData("mbr", OfflineView.Fuse)]
    [InlineData("gpt", OfflineView.Fuse)]
    [InlineData("mbr", OfflineView.Copy)]
    [InlineData("gpt", OfflineView.Copy)]
    public async Task Given_a_partitioned_disk_like_a_users_VM_When_read_offline_Then_files_come_from_its_ext4_partition(string scheme, OfflineView view)
    {
        var work = Directory.CreateTempSubdirectory("lab-offline-part").FullName;
        try
        {
            var qcow2 = await PartitionedDiskAsync(work, scheme);
            var before = await File.ReadAllBytesAsync(qcow2);
            await using (var reader = await OfflineLayerReader.OpenAsync(qcow2, work, view: view))
            {
                Assert.Equal(view, reader.View);
                Assert.EndsWith("partition2.raw", reader.ViewFile, StringComparison.Ordinal);
                var check = SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), 1000);
                Assert.True(check.Complete, check.Summary);
            }
            Assert.Equal(before, await File.ReadAllBytesAsync(qcow2));
            Assert.Empty(MountsUnder(work));
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Given_a_host_without_qemu_storage_daemon_When_a_layer_is_read_Then_auto_copies_it_saying_why_and_fuse_is_refused_in_one_line()
    {
        var work = Directory.CreateTempSubdirectory("lab-offline-nofuse").FullName;
        try
        {
            var qcow2 = await PartitionedDiskAsync(work, "mbr");
            var host = new WithoutProgram(LocalHost.Instance, "qemu-storage-daemon");
            await using (var reader = await OfflineLayerReader.OpenAsync(qcow2, work, host: host))
            {
                Assert.Equal(OfflineView.Copy, reader.View);
                Assert.Contains("qemu-storage-daemon", reader.ViewNote, StringComparison.Ordinal);
                Assert.True(SequenceChecker.Check(await reader.ReadFileAsync("/root/num.txt"), 1000).Complete);
            }
            var e = await Assert.ThrowsAsync<LabException>(() => OfflineLayerReader.OpenAsync(qcow2, work, host: host, view: OfflineView.Fuse));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains("qemu-storage-daemon", e.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.GetDirectories(work, "layer-read-*"));
            // What lab doctor says of each host ("offline reads").
            Assert.Null(await OfflineLayerReader.ProbeFuseAsync(LocalHost.Instance, work));
            Assert.Contains("qemu-storage-daemon", await OfflineLayerReader.ProbeFuseAsync(host, work), StringComparison.Ordinal);
            Assert.Empty(Directory.GetDirectories(work, "layer-read-*"));
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Given_a_FUSE_view_whose_lab_process_was_killed_When_lab_clean_runs_Then_its_daemon_stops_and_the_view_is_gone()
    {
        var work = Directory.CreateTempSubdirectory("lab-offline-orphan").FullName;
        try
        {
            var qcow2 = await PartitionedDiskAsync(work, "gpt");
            var reader = await OfflineLayerReader.OpenAsync(qcow2, work, view: OfflineView.Fuse);
            var folder = Path.GetDirectoryName(reader.ViewFile)!;
            // While its owner lives the daemon is not an orphan.
            Assert.DoesNotContain(Diagnostics.Leftovers.FindOrphans(), o => o.RuntimeFolder == folder);
            // As if the lab process had been killed: the owner file names a process that is gone.
            await File.WriteAllTextAsync(Path.Combine(folder, FuseExport.OwnerFile), "999999999 1");
            var orphan = Assert.Single(Diagnostics.Leftovers.FindOrphans(), o => o.RuntimeFolder == folder);
            var lines = await Diagnostics.Leftovers.CleanAsync(new Diagnostics.LeftoverReport([], [], null, [orphan]), includeKept: false);
            Assert.Contains(lines, l => l.Contains("offline-read daemon", StringComparison.Ordinal) && l.Contains(orphan.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
            Assert.False(Directory.Exists(folder));
            Assert.Empty(MountsUnder(work));
            Assert.False(Directory.Exists($"/proc/{orphan.Pid}"));
            // The reader's own end afterwards finds nothing left to do and does not fail.
            await reader.DisposeAsync();
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    private static IReadOnlyList<string> MountsUnder(string folder) =>
        File.ReadAllLines("/proc/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(folder + "/", StringComparison.Ordinal)).ToList();

    /// <summary>An ext4 filesystem made from a folder (mkfs.ext4 -d), placed in partition 2 behind a small partition 1, as qcow2.</summary>
    private static async Task<string> PartitionedDiskAsync(string work, string scheme)
    {
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
        return qcow2;
    }

    /// <summary>This machine, as a host on which one program is not installed (a fault a fake host can make; everything else is real).</summary>
    private sealed class WithoutProgram(ILabHost inner, string missing) : ILabHost
    {
        public string Name => inner.Name;
        public bool IsLocal => inner.IsLocal;
        public Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, ProcessOptions? options = null, CancellationToken cancellationToken = default) =>
            program == missing ? throw new LabException($"cannot run {program}: No such file or directory (is it installed? scripts/setup installs the lab's dependencies)") : inner.RunAsync(program, arguments, options, cancellationToken);
        public Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken = default) => inner.FileExistsAsync(path, cancellationToken);
        public Task<bool> DirectoryExistsAsync(string path, CancellationToken cancellationToken = default) => inner.DirectoryExistsAsync(path, cancellationToken);
        public Task CreateDirectoryAsync(string path, CancellationToken cancellationToken = default) => inner.CreateDirectoryAsync(path, cancellationToken);
        public Task DeleteFileAsync(string path, CancellationToken cancellationToken = default) => inner.DeleteFileAsync(path, cancellationToken);
        public Task DeleteDirectoryAsync(string path, bool recursive, CancellationToken cancellationToken = default) => inner.DeleteDirectoryAsync(path, recursive, cancellationToken);
        public Task<long> FileSizeAsync(string path, CancellationToken cancellationToken = default) => inner.FileSizeAsync(path, cancellationToken);
        public Task<string> Sha256Async(string path, CancellationToken cancellationToken = default) => inner.Sha256Async(path, cancellationToken);
        public Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) => inner.ReadAllBytesAsync(path, cancellationToken);
        public Task<byte[]> ReadRangeAsync(string path, long offset, int count, CancellationToken cancellationToken = default) => inner.ReadRangeAsync(path, offset, count, cancellationToken);
        public Task MoveFileAsync(string from, string to, CancellationToken cancellationToken = default) => inner.MoveFileAsync(from, to, cancellationToken);
        public Task WriteAllBytesAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) => inner.WriteAllBytesAsync(path, content, cancellationToken);
        public Task UploadAsync(string localFile, string path, CancellationToken cancellationToken = default) => inner.UploadAsync(localFile, path, cancellationToken);
        public Task<string> CreateTempDirectoryAsync(string prefix, string? parent = null, CancellationToken cancellationToken = default) => inner.CreateTempDirectoryAsync(prefix, parent, cancellationToken);
        public Task<IReadOnlyList<string>> MissingProgramsAsync(IEnumerable<string> programs, CancellationToken cancellationToken = default) => inner.MissingProgramsAsync(programs, cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
