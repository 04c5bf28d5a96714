using System.Diagnostics;
using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Processes;
using LabKernel.Ssh;
using Xunit.Abstractions;

namespace LabKernel.Tests.Ssh;

/// <summary>SshGuestShell (SSH.NET) against a real OpenSSH sshd on 127.0.0.1 that the tests start.</summary>
public sealed class SshGuestShellTests(LoopbackSshd sshd, ITestOutputHelper output) : IClassFixture<LoopbackSshd>
{
    [Fact]
    public async Task Given_a_command_writing_to_both_streams_When_run_Then_exit_status_stdout_and_stderr_come_back_apart()
    {
        await using var shell = new SshGuestShell(sshd.Target());

        var r = await shell.ExecAsync(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);

        Assert.Equal(3, r.ExitCode);
        Assert.Equal("out\n", r.StandardOutput);
        Assert.Equal("err\n", r.StandardError);
        Assert.Null(r.Signal);
        var e = await Assert.ThrowsAsync<GuestCommandFailedException>(() => shell.ExecAsync(["/bin/false"], new GuestExecOptions { Check = true }));
        Assert.Contains("/bin/false", e.Message);
    }

    [Fact]
    public async Task Given_input_bytes_When_a_command_reads_stdin_Then_it_gets_them_and_then_end_of_file()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var input = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();

        var r = await shell.ExecAsync(["cat"], new GuestExecOptions { Input = input });
        var empty = await shell.ExecAsync(["cat"]);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(input, r.StandardOutputBytes);
        Assert.Empty(empty.StandardOutputBytes);
    }

    [Fact]
    public async Task Given_arguments_with_spaces_quotes_globs_and_non_ASCII_When_run_Then_each_arrives_unchanged()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        string[] args = ["a b", "it's", "\"quoted\"", "$HOME", "`id`", "*", "ünïcødé €", "semi;colon", "new\nline", ""];

        var r = await shell.ExecAsync(["printf", "[%s]", .. args], new GuestExecOptions { Check = true });

        Assert.Equal(string.Concat(args.Select(a => $"[{a}]")), r.StandardOutput);
    }

    [Fact]
    public async Task Given_environment_variables_When_run_Then_the_command_sees_them()
    {
        await using var shell = new SshGuestShell(sshd.Target());

        var r = await shell.ExecAsync(["/bin/sh", "-c", "echo \"$LAB_X\""], new GuestExecOptions { Environment = ["LAB_X=one two"] });

        Assert.Equal("one two\n", r.StandardOutput);
    }

    [Fact]
    public async Task Given_many_commands_When_run_on_one_shell_Then_they_share_one_connection()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var times = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var sw = Stopwatch.StartNew();
            await shell.ExecAsync(["true"], new GuestExecOptions { Check = true });
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => shell.ExecAsync(["true"], new GuestExecOptions { Check = true })));

        Assert.Equal(1, shell.ConnectionsOpened);
        // For the record: the same `true` with the OpenSSH client process it replaces (a new connection each time).
        var openSsh = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            await ProcessRunner.RunAsync("ssh", ["-p", sshd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", sshd.ClientKey, "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", $"UserKnownHostsFile={sshd.KnownHosts}", "-o", "GlobalKnownHostsFile=/dev/null", "-F", "none",
                $"{sshd.User}@127.0.0.1", "--", "true"]);
            openSsh.Add(sw.Elapsed.TotalMilliseconds);
        }
        output.WriteLine($"`true` round trip, median: SSH.NET reused connection {Median(times.Skip(1)):0.0} ms (first, with connect: {times[0]:0.0} ms); OpenSSH process per command {Median(openSsh):0.0} ms");
    }

    [Fact]
    public async Task Given_a_slow_command_When_its_output_is_streamed_Then_the_first_line_arrives_before_it_ends()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        // The command ends only once this side has received its first line (the stream creates the flag file when it
        // is first written to): a shell that delivered output only at the end would never let it end, and the
        // command's limit fails the test. No timing is judged.
        var flag = Path.Combine(Path.GetTempPath(), "lab-stream-" + Guid.NewGuid().ToString("N"));
        var stdout = new FirstWriteStream(() => File.WriteAllText(flag, "seen"));
        try
        {
            var r = await shell.StreamAsync(["/bin/sh", "-c", $"echo first; while [ ! -e '{flag}' ]; do sleep 0.05; done; echo second"], stdout, Stream.Null,
                new GuestExecOptions { Timeout = TimeSpan.FromSeconds(60) });

            Assert.Equal(0, r.ExitCode);
            Assert.Equal("first\nsecond\n", Encoding.UTF8.GetString(stdout.ToArray()));
        }
        finally
        {
            File.Delete(flag);
        }
    }

    [Fact]
    public async Task Given_a_command_past_its_time_limit_When_run_Then_a_timeout_names_it_and_the_connection_still_works()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var sw = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => shell.ExecAsync(["sleep", "30"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(1) }));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), sw.Elapsed.ToString());
        Assert.Contains("sleep 30", e.Message);
        Assert.Equal(0, (await shell.ExecAsync(["true"])).ExitCode);
    }

    [Fact]
    public async Task Given_a_command_past_its_time_limit_When_it_times_out_Then_it_is_ended_in_the_guest_not_left_running()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var pidFile = Path.Combine(sshd.Folder, "timeout.pid");

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() =>
            shell.ExecAsync(["sh", "-c", $"echo $$ > {pidFile}; exec sleep 30"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(1) }));

        Assert.Equal(TimeSpan.FromSeconds(1), e.Limit);
        await AssertEndedAsync(pidFile);
    }

    [Fact]
    public async Task Given_a_running_command_When_its_caller_cancels_Then_it_is_ended_in_the_guest_and_the_call_ends_cancelled()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var pidFile = Path.Combine(sshd.Folder, "cancel.pid");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            shell.ExecAsync(["sh", "-c", $"trap '' TERM; echo $$ > {pidFile}; sleep 30 & wait"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(60) }, cts.Token));

        await AssertEndedAsync(pidFile);
        Assert.Equal(0, (await shell.ExecAsync(["true"])).ExitCode);
    }

    [Fact]
    public async Task Given_a_command_killed_by_a_signal_When_run_Then_the_signal_is_reported()
    {
        await using var shell = new SshGuestShell(sshd.Target());

        var r = await shell.ExecAsync(["/bin/sh", "-c", "kill -TERM $$"]);

        Assert.Equal(15, r.Signal);
        Assert.False(r.Succeeded);
    }

    [Fact]
    public async Task Given_a_file_When_written_and_read_back_over_SFTP_Then_the_bytes_are_the_same_and_the_shell_sees_it()
    {
        await using var shell = new SshGuestShell(sshd.Target());
        var path = Path.Combine(sshd.Folder, "sftp file ü.bin");
        var content = Enumerable.Range(0, 1_000_000).Select(i => (byte)(i % 251)).ToArray();

        await shell.WriteFileAsync(path, content);
        var back = await shell.ReadFileAsync(path);
        var size = await shell.OutputAsync(["stat", "-c", "%s", path]);

        Assert.Equal(content, back);
        Assert.Equal("1000000", size.Trim());
        var missing = await Assert.ThrowsAsync<LabException>(() => shell.ReadFileAsync(Path.Combine(sshd.Folder, "missing")));
        Assert.Contains("no such file", missing.Message);
    }

    [Fact]
    public async Task Given_a_known_hosts_pinning_another_key_When_connecting_Then_the_server_is_refused_before_authenticating()
    {
        var other = await sshd.OtherKeyAsync("impostor_host_key");
        var pub = (await File.ReadAllTextAsync(other + ".pub")).Trim().Split(' ');
        var pinned = Path.Combine(sshd.Folder, "known_hosts.other");
        await File.WriteAllTextAsync(pinned, $"# pinned elsewhere\n[127.0.0.1]:{sshd.Port} {pub[0]} {pub[1]}\n");
        await using var shell = new SshGuestShell(sshd.Target(knownHosts: pinned));

        var e = await Assert.ThrowsAsync<SshHostKeyMismatchException>(() => shell.ExecAsync(["true"]));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("not the one pinned", e.Message);
        Assert.StartsWith("SHA256:", e.PresentedFingerprint, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SshHostKeyMismatchException>(() => shell.WaitUntilReadyAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Given_a_key_the_server_does_not_authorize_When_connecting_Then_authentication_fails_in_one_line()
    {
        await using var shell = new SshGuestShell(sshd.Target(key: await sshd.OtherKeyAsync("stranger_key")));

        var e = await Assert.ThrowsAsync<SshAuthenticationFailedException>(() => shell.ExecAsync(["true"]));

        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("refused the key", e.Message);
    }

    [Fact]
    public async Task Given_no_sshd_on_the_port_When_connecting_Then_connection_refused_is_reported()
    {
        await using var shell = new SshGuestShell(sshd.Target(port: LoopbackSshd.FreePort()));

        var e = await Assert.ThrowsAsync<SshConnectionRefusedException>(() => shell.ExecAsync(["true"]));

        Assert.Contains("connection refused", e.Message);
        await Assert.ThrowsAsync<LabTimeoutException>(() => shell.WaitUntilReadyAsync(TimeSpan.FromSeconds(1)));
    }

    [Theory]
    [InlineData("* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "10.0.0.1", 2222, 1)]
    [InlineData("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "127.0.0.1", 2222, 1)]
    [InlineData("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "127.0.0.1", 2223, 0)]
    [InlineData("guest,127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "127.0.0.1", 22, 1)]
    [InlineData("@revoked * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "127.0.0.1", 22, 0)]
    public void Known_hosts_lines_pin_a_key_for_the_hosts_and_ports_they_name(string line, string host, int port, int expected)
    {
        var keys = PinnedHostKeys.Parse(["# comment", "", line], host, port);

        Assert.Equal(expected, keys.Count);
        Assert.All(keys, k => Assert.Equal("ssh-ed25519", k.KeyType));
    }

    /// <summary>The process whose id the file holds (the sshd here runs on this machine) is ended within seconds.</summary>
    private static async Task AssertEndedAsync(string pidFile) =>
        await ProcTable.WaitEndedAsync(int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture), "the guest command");

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>A memory stream that remembers when it was first written to.</summary>
    /// <summary>A memory stream that calls <c>onFirstWrite</c> when the first bytes arrive.</summary>
    private sealed class FirstWriteStream(Action onFirstWrite) : MemoryStream
    {
        private bool _written;

        public override void Write(byte[] buffer, int offset, int count)
        {
            Mark(count);
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Mark(buffer.Length);
            base.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Mark(count);
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Mark(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }

        private void Mark(int count)
        {
            if (count > 0 && !_written)
            {
                _written = true;
                onFirstWrite();
            }
        }
    }
}
