using LabKernel.Processes;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// `lab run` given a command line it cannot use: exit 2 and one line on stderr saying what is wrong (not the help page),
/// nothing on stdout, and no kernel started. `lab` runs as its own process here, so what it prints is exactly what a
/// user sees.
/// </summary>
public sealed class RunUsageErrorTests
{
    private static Task<ProcessResult> LabAsync(params string[] args) => LabProcessAsync(TimeSpan.FromMinutes(1), args);

    private static void AssertOneLineUsageError(ProcessResult r, string expected)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.StandardError}");
        Assert.Equal(expected, r.StandardError.TrimEnd('\n'));
        Assert.Equal("", r.StandardOutput);
    }

    [Fact]
    public async Task Given_p_with_one_value_When_run_Then_one_line_says_the_name_has_no_value_and_it_exits_2() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "-p", "points"),
            "lab: run: -p takes a NAME and a VALUE; 'points' has no value");

    [Fact]
    public async Task Given_an_odd_number_of_p_values_When_run_Then_one_line_says_p_takes_a_name_and_a_value_and_it_exits_2() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "-p", "a", "b", "-p", "c"),
            "lab: run: -p takes a NAME and a VALUE; 'c' has no value");

    [Fact]
    public async Task Given_an_unknown_option_When_run_Then_one_line_names_it_and_points_to_the_help_and_it_exits_2() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "--no-such-option"),
            "lab: run: unknown option --no-such-option (see lab run --help)");

    [Theory]
    [InlineData("abc")]
    [InlineData("-5")]
    public async Task Given_a_cell_timeout_that_is_not_a_positive_number_When_run_Then_one_line_says_so_and_it_exits_2(string value) =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "--cell-timeout", value),
            $"lab: --cell-timeout {value}: expected a positive number of seconds");

    [Fact]
    public async Task Given_o_naming_the_input_itself_When_run_Then_one_line_refuses_it_exits_2_and_the_input_is_untouched()
    {
        using var scratch = TempDir("usage-o");
        var input = Path.Combine(scratch.Path, "in.ipynb");
        File.Copy(Fixture("vscode.ipynb"), input);
        var before = await File.ReadAllBytesAsync(input);

        foreach (var o in new[] { input, Path.Combine(scratch.Path, ".", "in.ipynb") })
        {
            AssertOneLineUsageError(await LabAsync("run", input, "-o", o), $"lab: -o {o}: refusing to overwrite the input notebook");
        }

        Assert.Equal(before, await File.ReadAllBytesAsync(input));
        Assert.Equal(["in.ipynb"], Directory.GetFiles(scratch.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Given_a_third_positional_argument_When_run_Then_one_line_says_script_arguments_go_after_the_double_dash_and_it_exits_2() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "out.ipynb", "stray"),
            "lab: run: unexpected argument 'stray': lab run takes IN and OUT; a script's arguments go after --");

    [Fact]
    public async Task Given_an_unknown_parameter_in_y_When_run_Then_one_line_lists_the_declared_names_and_it_exits_2_before_any_kernel_starts() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("sample.dib"), "-y", "repeat: 3\nnope: 1"),
            "lab: unknown parameter 'nope'; the parameters cell declares: repeat, word");

    [Fact]
    public async Task Given_prepare_only_for_a_csx_without_OUT_When_run_Then_one_line_asks_for_OUT_and_it_exits_2() =>
        AssertOneLineUsageError(await LabAsync("run", Fixture("script.csx"), "--prepare-only"),
            "lab: --prepare-only writes the notebook with its parameters injected: give OUT (a .csx writes none by default)");
}
