using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using LabKernel.Host;
using LabKernel.Processes;
using LabKernel.Ssh;
using LabKernel.Tests.Ssh;

namespace LabKernel.Tests.Host;

/// <summary>One loopback sshd, an <see cref="SshHost"/> connected to it, and a scratch folder both hosts see (the same machine).</summary>
public sealed class LabHostFixture : IAsyncLifetime
{
    public LoopbackSshd Sshd { get; } = new();

    public SshHost Ssh { get; private set; } = null!;

    public string Folder { get; } = Path.Combine("/var/tmp", "lab-host-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public ILabHost Host(string which) => which switch
    {
        "local" => LocalHost.Instance,
        "ssh" => Ssh,
        _ => throw new ArgumentOutOfRangeException(nameof(which)),
    };

    /// <summary>A fresh, empty folder for one test (on this machine, so on both hosts).</summary>
    public string NewFolder(string name)
    {
        var path = Path.Combine(Folder, name + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(path);
        return path;
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Folder);
        await ((IAsyncLifetime)Sshd).InitializeAsync();
        Ssh = await SshHost.ConnectAsync(Sshd.HostOptions());
    }

    public async Task DisposeAsync()
    {
        if (Ssh is not null)
        {
            await Ssh.DisposeAsync();
        }
        await Sshd.DisposeAsync();
        LabPaths.TryDeleteFolder(Folder);
    }
}

/// <summary>
/// <see cref="LocalHost"/> and <see cref="SshHost"/> (over SSH.NET to a real OpenSSH sshd on 127.0.0.1) behave the
/// same: each theory runs once on each.
/// </summary>
public sealed class LabHostTests(LabHostFixture fx) : IClassFixture<LabHostFixture>
{
    public static TheoryData<string> Hosts => new() { "local", "ssh" };

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_program_writing_to_both_streams_When_run_unchecked_Then_exit_code_stdout_and_stderr_come_back_apart(string which)
    {
        var host = fx.Host(which);

        var r = await host.RunAsync("sh", ["-c", "echo out; echo err >&2; exit 3"], new ProcessOptions { Check = false });

        Assert.Equal(3, r.ExitCode);
        Assert.Equal("out\n", r.StandardOutput);
        Assert.Equal("err\n", r.StandardError);
        Assert.Equal("sh", r.FileName);
        Assert.Equal(["-c", "echo out; echo err >&2; exit 3"], r.Arguments);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_line_callbacks_When_a_program_writes_lines_Then_each_stream_hands_over_only_its_own_lines(string which)
    {
        var host = fx.Host(which);
        var outLines = new List<string>();
        var errLines = new List<string>();

        await host.RunAsync("sh", ["-c", "echo a; echo x >&2; echo b; printf c"],
            new ProcessOptions { OnOutputLine = l => { lock (outLines) { outLines.Add(l); } }, OnErrorLine = l => { lock (errLines) { errLines.Add(l); } } });

        Assert.Equal(["a", "b", "c"], outLines);
        Assert.Equal(["x"], errLines);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_standard_input_When_a_program_reads_it_or_not_Then_it_gets_the_bytes_then_end_of_file_or_exits_unread(string which)
    {
        var host = fx.Host(which);
        var text = string.Concat(Enumerable.Range(0, 20_000).Select(i => $"{i}\n"));

        var r = await host.RunAsync("cat", [], new ProcessOptions { StandardInput = Encoding.UTF8.GetBytes(text), Timeout = TimeSpan.FromSeconds(30) });
        var empty = await host.RunAsync("cat", [], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) });

        var unread = await host.RunAsync("true", [], new ProcessOptions { StandardInput = new byte[4 << 20], Timeout = TimeSpan.FromSeconds(30) });

        Assert.Equal(text, r.StandardOutput);
        Assert.Equal("", empty.StandardOutput);
        Assert.Equal(0, unread.ExitCode);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_arguments_with_spaces_quotes_and_shell_syntax_When_run_Then_each_arrives_unchanged(string which)
    {
        var host = fx.Host(which);
        string[] args = ["a b", "it's", "\"q\"", "$HOME", "`id`", "*", "ünï €", "x;y", "new\nline", ""];

        var r = await host.RunAsync("printf", ["[%s]", .. args]);

        Assert.Equal(string.Concat(args.Select(a => $"[{a}]")), r.StandardOutput);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_an_environment_and_a_working_folder_When_run_Then_the_program_sees_both(string which)
    {
        var host = fx.Host(which);
        var folder = fx.NewFolder("cwd");

        var r = await host.RunAsync("sh", ["-c", "echo \"$LAB_X\"; pwd"],
            new ProcessOptions { Environment = new Dictionary<string, string?> { ["LAB_X"] = "one two" }, WorkingDirectory = folder });

        Assert.Equal($"one two\n{folder}\n", r.StandardOutput);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_failing_program_When_run_checked_Then_ProcessFailedException_names_the_command_line_and_stderr(string which)
    {
        var host = fx.Host(which);

        var e = await Assert.ThrowsAsync<ProcessFailedException>(() => host.RunAsync("sh", ["-c", "echo boom >&2; exit 4"]));

        Assert.Equal(4, e.Result.ExitCode);
        Assert.Contains("`sh -c 'echo boom >&2; exit 4'` exited with 4", e.Message);
        Assert.Contains("boom", e.Message);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_program_that_outlives_its_limit_When_run_Then_a_LabTimeoutException_names_it_and_the_program_is_ended(string which)
    {
        var host = fx.Host(which);
        var pidFile = Path.Combine(fx.NewFolder("timeout"), "pid");
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() =>
            host.RunAsync("sh", ["-c", $"echo $$ > {pidFile}; exec sleep 30"], new ProcessOptions { Timeout = TimeSpan.FromSeconds(1) }));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"took {sw.Elapsed}");
        Assert.Contains("sleep 30", e.Message);
        Assert.Equal(TimeSpan.FromSeconds(1), e.Limit);
        var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await ProcTable.WaitEndedAsync(pid, "sleep");
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_cancelled_token_When_a_program_runs_Then_the_call_ends_cancelled_not_timed_out(string which)
    {
        var host = fx.Host(which);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var sw = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => host.RunAsync("sleep", ["30"], new ProcessOptions { Timeout = TimeSpan.FromSeconds(60) }, cts.Token));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"took {sw.Elapsed}");
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_program_that_is_not_installed_When_run_Then_a_LabException_names_it_unlike_a_program_that_exits_127(string which)
    {
        var host = fx.Host(which);

        var e = await Assert.ThrowsAsync<LabException>(() => host.RunAsync("lab-no-such-program", ["x"]));

        Assert.Contains("cannot run lab-no-such-program", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // A program that is there but whose own child is not: its exit status, not a missing program.
        var r = await host.RunAsync("sh", ["-c", "lab-no-such-program"], new ProcessOptions { Check = false });
        Assert.Equal(127, r.ExitCode);
        Assert.Contains("lab-no-such-program", r.StandardError);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_bogus_program_among_real_ones_When_asking_which_are_missing_Then_only_it_is_named(string which)
    {
        var host = fx.Host(which);

        var missing = await host.MissingProgramsAsync(["sh", "qemu-img", "sha256sum", "lab-bogus-program", "sh"]);

        Assert.Equal(["lab-bogus-program"], missing);
        Assert.Empty(await host.MissingProgramsAsync(["sh"]));
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_bytes_written_to_a_file_When_read_back_Then_content_size_existence_and_hash_agree_with_this_machines(string which)
    {
        var host = fx.Host(which);
        var path = Path.Combine(fx.NewFolder("files"), "data bin");
        var content = RandomNumberGenerator.GetBytes(300_000);

        Assert.False(await host.FileExistsAsync(path));
        await host.WriteAllBytesAsync(path, content);

        Assert.True(await host.FileExistsAsync(path));
        Assert.False(await host.DirectoryExistsAsync(path));
        Assert.Equal(content.Length, await host.FileSizeAsync(path));
        Assert.Equal(content, await host.ReadAllBytesAsync(path));
        Assert.Equal(content, await File.ReadAllBytesAsync(path));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), await host.Sha256Async(path));
        await host.WriteAllBytesAsync(path, "short"u8.ToArray());
        Assert.Equal(5, await host.FileSizeAsync(path));

        await host.DeleteFileAsync(path);
        Assert.False(await host.FileExistsAsync(path));
        Assert.False(File.Exists(path));
        await host.DeleteFileAsync(path);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_missing_file_When_read_sized_or_hashed_Then_each_call_fails(string which)
    {
        var host = fx.Host(which);
        var path = Path.Combine(fx.NewFolder("missing"), "absent");

        await Assert.ThrowsAnyAsync<Exception>(() => host.ReadAllBytesAsync(path));
        await Assert.ThrowsAnyAsync<Exception>(() => host.FileSizeAsync(path));
        await Assert.ThrowsAnyAsync<Exception>(() => host.Sha256Async(path));
        await Assert.ThrowsAnyAsync<Exception>(() => host.WriteAllBytesAsync(Path.Combine(path, "under"), new byte[] { 1 }));
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_nested_folders_When_created_and_deleted_Then_parents_are_made_and_only_a_recursive_delete_empties_a_folder(string which)
    {
        var host = fx.Host(which);
        var root = Path.Combine(fx.NewFolder("dirs"), "a");
        var nested = Path.Combine(root, "b", "c d");

        await host.CreateDirectoryAsync(nested);
        await host.CreateDirectoryAsync(nested);
        await host.WriteAllBytesAsync(Path.Combine(nested, "f"), new byte[] { 1, 2, 3 });

        Assert.True(await host.DirectoryExistsAsync(nested));
        Assert.True(Directory.Exists(nested));
        Assert.False(await host.FileExistsAsync(nested));
        await Assert.ThrowsAnyAsync<Exception>(() => host.DeleteDirectoryAsync(root, recursive: false));
        Assert.True(Directory.Exists(root));
        var empty = Path.Combine(root, "empty");
        await host.CreateDirectoryAsync(empty);
        await host.DeleteDirectoryAsync(empty, recursive: false);
        Assert.False(Directory.Exists(empty));
        await host.DeleteDirectoryAsync(root, recursive: true);
        Assert.False(await host.DirectoryExistsAsync(root));
        Assert.False(Directory.Exists(root));
        await host.DeleteDirectoryAsync(root, recursive: true);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_a_prefix_and_a_parent_When_a_temp_folder_is_made_Then_it_is_new_private_and_named_so(string which)
    {
        var host = fx.Host(which);
        var parent = fx.NewFolder("temp");

        var a = await host.CreateTempDirectoryAsync("lab-run-", parent);
        var b = await host.CreateTempDirectoryAsync("lab-run-", parent);

        Assert.NotEqual(a, b);
        Assert.Equal(parent, Path.GetDirectoryName(a));
        Assert.StartsWith("lab-run-", Path.GetFileName(a), StringComparison.Ordinal);
        Assert.True(await host.DirectoryExistsAsync(a));
        Assert.Equal(Private.Folder, File.GetUnixFileMode(a));
        var default_ = await host.CreateTempDirectoryAsync("lab-host-test-");
        try
        {
            Assert.Equal("/var/tmp", Path.GetDirectoryName(default_));
        }
        finally
        {
            await host.DeleteDirectoryAsync(default_, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_several_commands_at_once_When_run_Then_each_gets_its_own_output(string which)
    {
        var host = fx.Host(which);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => host.RunAsync("sh", ["-c", $"sleep 0.2; echo {i}"])));

        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"{i}\n"), results.Select(r => r.StandardOutput));
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Given_several_files_at_once_When_written_and_read_concurrently_Then_each_keeps_its_own_bytes(string which)
    {
        var host = fx.Host(which);
        var folder = fx.NewFolder("concurrent");
        var contents = Enumerable.Range(0, 6).Select(i => RandomNumberGenerator.GetBytes(50_000 + i)).ToArray();

        await Task.WhenAll(contents.Select((c, i) => host.WriteAllBytesAsync(Path.Combine(folder, $"f{i}"), c)));
        var read = await Task.WhenAll(contents.Select((_, i) => host.ReadAllBytesAsync(Path.Combine(folder, $"f{i}"))));
        var hashes = await Task.WhenAll(contents.Select((_, i) => host.Sha256Async(Path.Combine(folder, $"f{i}"))));

        Assert.Equal(contents, read);
        Assert.Equal(contents.Select(c => Convert.ToHexStringLower(SHA256.HashData(c))), hashes);
    }

    [Fact]
    public void Given_the_two_hosts_When_named_Then_this_machine_is_local_and_the_ssh_host_is_user_at_host_and_port()
    {
        Assert.True(LocalHost.Instance.IsLocal);
        Assert.Equal("this machine", LocalHost.Instance.Name);
        Assert.False(fx.Ssh.IsLocal);
        Assert.Equal($"{fx.Sshd.User}@127.0.0.1:{fx.Sshd.Port}", fx.Ssh.Name);
    }
}
