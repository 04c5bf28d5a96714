using System.Security.Cryptography;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

/// <summary>
/// Notebook 03's copy checks ("every created, deleted and written file is in the copy as the manifest says") and
/// notebook 05's change checks ("a copy holds change1..changeN"), fed a copy with one fault: a file with a byte
/// changed, cut short, missing, a deleted file back, a directory missing, a booted copy that changed. The workload
/// is the real one (<see cref="FileOpsWorkload"/>), run by this machine's <c>/bin/sh</c> in a temp folder.
/// </summary>
public sealed class CopyFaultTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lab-copyfault-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs the workload under <c>_dir/guest/ops</c> and copies the guest folder whole to <c>_dir/copy</c>.</summary>
    private async Task<(FileOpsWorkload Work, LocalCopyView Copy)> WorkAndCopyAsync(string name = "ops", int seed = 3)
    {
        var root = Path.Combine(_dir, "guest", name);
        var work = await FileOpsWorkload.RunAsync(new LocalShell(_dir), root, count: 40, seed: seed);
        var copyRoot = Path.Combine(_dir, "copy");
        CopyTree(root, Path.Join(copyRoot, root));
        return (work, new LocalCopyView(copyRoot));
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.GetDirectories(from))
        {
            CopyTree(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }

    private static async Task<CopyCheck> CheckAsync(LocalCopyView copy, params FileOpsWorkload[] work) =>
        new(await FileOpsWorkload.VerifyAllAsync(copy, work), "read offline");

    private static string WrittenFile(FileOpsWorkload work) => work.Operations.Last(o => o.Sha256 is not null).Path;

    [Fact]
    public async Task Given_an_exact_copy_When_checked_Then_every_path_is_as_the_manifest_says()
    {
        var (work, copy) = await WorkAndCopyAsync();

        var check = await CheckAsync(copy, work);

        Assert.True(check.AllOk, check.Summary);
    }

    [Fact]
    public async Task Given_a_copy_with_one_byte_of_one_file_changed_When_checked_Then_it_is_refuted_naming_that_file()
    {
        var (work, copy) = await WorkAndCopyAsync();
        var victim = WrittenFile(work);
        var bytes = await File.ReadAllBytesAsync(copy.HostPath(victim));
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(copy.HostPath(victim), bytes);

        var check = await CheckAsync(copy, work);

        Assert.False(check.AllOk);
        var bad = Assert.Single(check.Files.Findings, f => !f.Ok);
        Assert.Equal(victim, bad.Path);
        Assert.StartsWith("1 of ", check.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_copy_with_a_file_cut_short_When_checked_Then_it_is_refuted()
    {
        var (work, copy) = await WorkAndCopyAsync();
        var victim = WrittenFile(work);
        await using (var f = File.OpenWrite(copy.HostPath(victim)))
        {
            f.SetLength(f.Length - 1);
        }

        Assert.False((await CheckAsync(copy, work)).AllOk);
    }

    [Fact]
    public async Task Given_a_copy_missing_a_file_or_a_directory_When_checked_Then_it_is_refuted_as_missing()
    {
        var (work, copy) = await WorkAndCopyAsync();
        var (present, _) = work.ExpectedState();
        var file = WrittenFile(work);
        var dir = present.First(p => Directory.Exists(copy.HostPath(p)) && !file.StartsWith(p + "/", StringComparison.Ordinal));
        File.Delete(copy.HostPath(file));
        Directory.Delete(copy.HostPath(dir), recursive: true);

        var check = await CheckAsync(copy, work);

        Assert.False(check.AllOk);
        Assert.Contains(check.Files.Findings, f => f.Path == file && f.Found == "missing");
        Assert.Contains(check.Files.Findings, f => f.Path == dir && f.Found == "missing");
    }

    [Fact]
    public async Task Given_a_copy_where_a_deleted_file_is_still_there_When_checked_Then_it_is_refuted_as_present()
    {
        var (work, copy) = await WorkAndCopyAsync();
        var (_, absent) = work.ExpectedState();
        // A removed file, or a removed directory, that the copy still holds: the deletion did not reach it.
        var gone = absent.First(p => Directory.Exists(copy.HostPath(Path.GetDirectoryName(p)!)));
        await File.WriteAllTextAsync(copy.HostPath(gone), "stale");

        var check = await CheckAsync(copy, work);

        Assert.False(check.AllOk);
        var bad = Assert.Single(check.Files.Findings, f => !f.Ok);
        Assert.Equal((gone, "absent", "present"), (bad.Path, bad.Expected, bad.Found));
    }

    [Fact]
    public async Task Given_two_workloads_and_a_copy_that_lost_the_second_ones_files_When_checked_together_Then_it_is_refuted()
    {
        var (first, _) = await WorkAndCopyAsync("ops1", seed: 1);
        var second = await FileOpsWorkload.RunAsync(new LocalShell(_dir), Path.Combine(_dir, "guest", "ops2"), count: 40, seed: 2);
        var copy = new LocalCopyView(Path.Combine(_dir, "copy")); // holds ops1 only: the outage's operations never reached it

        var check = await CheckAsync(copy, first, second);

        Assert.False(check.AllOk);
        Assert.All(check.Files.Findings.Where(f => !f.Ok), f => Assert.StartsWith(second.Root + "/", f.Path, StringComparison.Ordinal));
        Assert.True((await CheckAsync(copy, first)).AllOk);
    }

    [Fact]
    public async Task Given_a_booted_copy_whose_image_changed_When_checked_Then_it_is_refuted_even_with_every_file_right()
    {
        var (work, copy) = await WorkAndCopyAsync();
        var files = await FileOpsWorkload.VerifyAllAsync(copy, [work]);

        Assert.True(new CopyCheck(files, "booted", CopyUnchanged: true).AllOk);
        Assert.False(new CopyCheck(files, "booted", CopyUnchanged: false).AllOk);
    }

    [Fact]
    public async Task Given_changes_with_their_SHA256_When_a_view_lost_one_and_holds_another_with_a_byte_changed_Then_both_are_named_in_order()
    {
        var copy = new LocalCopyView(_dir);
        var changes = new Dictionary<string, string>();
        foreach (var name in new[] { "change1", "change2", "change3" })
        {
            var bytes = RandomNumberGenerator.GetBytes(64 * 1024);
            var path = $"/root/{name}.bin";
            Directory.CreateDirectory(Path.GetDirectoryName(copy.HostPath(path))!);
            await File.WriteAllBytesAsync(copy.HostPath(path), bytes);
            changes[path] = Convert.ToHexStringLower(SHA256.HashData(bytes));
        }
        Assert.Empty(await ExpectedFiles.LackingAsync(copy, changes, changes.Keys));

        File.Delete(copy.HostPath("/root/change1.bin"));
        var flipped = await File.ReadAllBytesAsync(copy.HostPath("/root/change3.bin"));
        flipped[0] ^= 0x01;
        await File.WriteAllBytesAsync(copy.HostPath("/root/change3.bin"), flipped);

        Assert.Equal(["/root/change1.bin", "/root/change3.bin"], await ExpectedFiles.LackingAsync(copy, changes, changes.Keys));
        Assert.Empty(await ExpectedFiles.LackingAsync(copy, changes, ["/root/change2.bin"]));
    }
}
