using System.Text;
using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Integrity;
using LabKernel.Processes;

namespace LabKernel.Tests.Integrity;

/// <summary>
/// Values that reach a guest shell (a root folder, a path, a device) arrive as one literal argument, whatever they
/// hold: checked by running the command lines the lab builds with the real <c>/bin/sh</c> of this machine against a
/// temp folder, not by comparing strings.
/// </summary>
public sealed class GuestShellQuotingTests : IDisposable
{
    /// <summary>Quotes, command substitution, spaces, separators, globs, a newline, a leading dash, and (for ShellQuote) nothing at all.</summary>
    private static readonly string[] Hostile =
    [
        "it's", "a b", "$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "x && touch PWNED", "'", "''", "\"", "\\", "a\\'b",
        "$HOME", "${IFS}", "*", "?", "[a]", "~", "#not a comment", "-n", "line\nbreak", "tab\there", "|", ">", "<", "!", "é ü", "",
        "a=b", "'$(touch PWNED)'", "\\'$(touch PWNED)\\'",
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("lab-quoting-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void AssertNothingInjected() =>
        Assert.Empty(Directory.GetFiles(_dir, "PWNED", SearchOption.AllDirectories).Concat(Directory.GetFiles(Path.GetTempPath(), "PWNED")));

    [Fact]
    public async Task Given_hostile_strings_When_quoted_and_read_back_by_sh_Then_each_is_one_argument_equal_to_itself()
    {
        var shell = new LocalShell(_dir);
        var line = "printf '%s\\0' " + ShellQuote.Join(Hostile);

        var r = await shell.ExecAsync(["/bin/sh", "-c", line], new GuestExecOptions { Check = true });

        Assert.Equal(Hostile, r.StandardOutput.Split('\0')[..^1]);
        AssertNothingInjected();
    }

    [Fact]
    public async Task Given_a_command_name_that_looks_like_an_assignment_When_joined_Then_sh_runs_it_as_the_command()
    {
        // Unquoted, `A=1 x` would set A and run x: the first word must stay the program.
        var program = Path.Combine(_dir, "A=1");
        await File.WriteAllTextAsync(program, "#!/bin/sh\necho ran \"$@\"\n");
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var shell = new LocalShell(_dir);

        var r = await shell.ExecAsync(["/usr/bin/env", $"PATH={_dir}:/usr/bin:/bin", "/bin/sh", "-c", ShellQuote.Join(["A=1", "echo", "x"])]);

        Assert.Equal("ran echo x\n", r.StandardOutput);
    }

    [Theory]
    [InlineData("it's $(touch PWNED) a; b")]
    [InlineData("`touch PWNED` \"q\" & x")]
    [InlineData("back\\slash * ~ #hash")]
    public async Task Given_a_file_workload_root_with_quotes_substitution_spaces_and_separators_When_run_by_sh_Then_every_path_is_made_literally(string name)
    {
        var root = Path.Combine(_dir, name);
        var shell = new LocalShell(_dir);

        var workload = await FileOpsWorkload.RunAsync(shell, root, count: 40, seed: 3);

        var (present, absent) = workload.ExpectedState();
        Assert.NotEmpty(present);
        foreach (var path in present)
        {
            Assert.True(File.Exists(path) || Directory.Exists(path), $"{path} was not made");
            Assert.StartsWith(root + "/", path, StringComparison.Ordinal);
        }
        Assert.NotEmpty(absent);
        Assert.All(absent, p => Assert.False(File.Exists(p) || Directory.Exists(p), $"{p} is still there"));
        // The checksums sha256sum printed are matched back to the literal paths.
        var written = workload.Operations.Where(o => o.Sha256 is not null).ToList();
        Assert.NotEmpty(written);
        Assert.All(written, o => Assert.Equal(o.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(o.Path)))));
        Assert.Equal([root], Directory.GetDirectories(_dir));
        AssertNothingInjected();
    }

    [Theory]
    [InlineData("dev it's $(touch PWNED); x")]
    [InlineData("`touch PWNED`&")]
    public async Task Given_a_device_path_with_quotes_and_substitution_When_the_sequence_writer_runs_in_sh_Then_it_writes_that_file(string name)
    {
        var device = Path.Combine(_dir, name);
        var shell = new LocalShell(_dir);

        var result = await DeviceSequenceWriter.RunAsync(shell, device, blocks: 3);

        Assert.Equal(3, result.TimestampsNs.Count);
        var bytes = await File.ReadAllBytesAsync(device);
        Assert.Equal(3 * DeviceSequenceWriter.BlockSize, bytes.Length);
        Assert.StartsWith("seq 00000002\n", Encoding.ASCII.GetString(bytes, 2 * DeviceSequenceWriter.BlockSize, 16), StringComparison.Ordinal);
        Assert.Equal([device], Directory.GetFiles(_dir));
        AssertNothingInjected();
    }

    [Theory]
    [InlineData(SequenceWriterKind.Awk)]
    [InlineData(SequenceWriterKind.ShellLoop)]
    public async Task Given_a_sequence_file_path_with_quotes_backslashes_and_substitution_When_the_writer_runs_Then_it_writes_that_file(SequenceWriterKind kind)
    {
        // awk's -v NAME=VALUE reads escapes in VALUE (\s, \n): a path must reach the program some other way.
        var options = new SequenceWriterOptions { Path = Path.Combine(_dir, "it's $(touch PWNED) back\\slash\\n.txt"), Count = 25, FlushEvery = 10, Kind = kind };
        var shell = new LocalShell(_dir);

        await shell.ExecAsync(SequenceWriter.Command(options), new GuestExecOptions { Check = true });

        Assert.Equal(Enumerable.Range(1, 25).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), await File.ReadAllLinesAsync(options.Path));
        Assert.Equal("25", (await File.ReadAllTextAsync(options.ProgressPath)).Trim());
        Assert.Equal(2, Directory.GetFiles(_dir).Length);
        AssertNothingInjected();
    }

    [Theory]
    [InlineData(SequenceWriterKind.Awk)]
    [InlineData(SequenceWriterKind.ShellLoop)]
    public async Task Given_a_sequence_file_whose_writes_fail_When_the_writer_runs_Then_it_exits_with_an_error_and_never_records_its_last_line(SequenceWriterKind kind)
    {
        // Every append fails (ENOSPC): the file is /dev/full. The document's loop would go on and exit 0.
        var path = Path.Combine(_dir, "full.txt");
        File.CreateSymbolicLink(path, "/dev/full");
        var options = new SequenceWriterOptions { Path = path, Count = 25, FlushEvery = 10, Kind = kind };
        var shell = new LocalShell(_dir);

        var result = await shell.ExecAsync(SequenceWriter.Command(options), new GuestExecOptions { Check = false });

        Assert.NotEqual(0, result.ExitCode);
        Assert.NotEqual("25", File.Exists(options.ProgressPath) ? (await File.ReadAllTextAsync(options.ProgressPath)).Trim() : "");
    }
}
