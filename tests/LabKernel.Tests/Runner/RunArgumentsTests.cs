using LabRunner.Commands;
using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// `lab run`'s command line read as papermill reads its own: IN and OUT positional, options anywhere, parameters
/// from -f files, -y strings and -p pairs merged in papermill's order. No kernel is started here.
/// </summary>
public sealed class RunArgumentsTests
{
    [Fact]
    public void Given_in_out_p_and_y_When_parsed_Then_OUT_is_the_second_positional_and_each_option_keeps_its_values()
    {
        var a = RunArguments.Parse(["in.ipynb", "out.ipynb", "-p", "A", "1", "-y", "params.yaml"]);

        Assert.Equal("in.ipynb", a.Input);
        Assert.Equal("out.ipynb", a.OutputPath);
        Assert.Equal([("A", "1")], a.Parameters);
        Assert.Equal(["params.yaml"], a.YamlParameters);
        Assert.Empty(a.ScriptArguments);
    }

    [Fact]
    public void Given_p_before_IN_and_between_IN_and_OUT_When_parsed_Then_p_takes_exactly_two_tokens_each_time()
    {
        var a = RunArguments.Parse(["-p", "A", "1", "in.ipynb", "-p", "offset", "-5", "out.ipynb", "--log-output", "--prepare-only"]);

        Assert.Equal("in.ipynb", a.Input);
        Assert.Equal("out.ipynb", a.OutputPath);
        Assert.Equal([("A", "1"), ("offset", "-5")], a.Parameters);
        Assert.True(a.LogOutput);
        Assert.True(a.PrepareOnly);
    }

    [Fact]
    public void Given_repeated_f_and_y_and_long_spellings_When_parsed_Then_every_value_is_kept_in_order()
    {
        var a = RunArguments.Parse(["in.ipynb", "-f", "a.yaml", "--parameters_file", "b.yaml", "-y", "x: 1", "--parameters-yaml=y: 2", "--timeout=5", "-o", "out.ipynb"]);

        Assert.Equal(["a.yaml", "b.yaml"], a.ParameterFiles);
        Assert.Equal(["x: 1", "y: 2"], a.YamlParameters);
        Assert.Equal("5", a.Timeout);
        Assert.Equal("out.ipynb", a.OutputPath);
    }

    [Fact]
    public void Given_tokens_after_double_dash_When_parsed_Then_they_are_the_scripts_arguments_even_when_they_look_like_options()
    {
        var a = RunArguments.Parse(["script.csx", "--", "a", "-p", "--timeout"]);

        Assert.Equal(["a", "-p", "--timeout"], a.ScriptArguments);
        Assert.Null(a.OutputPath);
        Assert.Empty(a.Parameters);
    }

    [Theory]
    [InlineData(new[] { "in.ipynb", "out.ipynb", "stray" }, "run: unexpected argument 'stray': lab run takes IN and OUT; a script's arguments go after --")]
    [InlineData(new[] { "in.ipynb", "out.ipynb", "-o", "other.ipynb" }, "run: the output notebook is given twice (out.ipynb and -o other.ipynb): give one")]
    [InlineData(new[] { "in.ipynb", "-p", "points" }, "run: -p takes a NAME and a VALUE; 'points' has no value")]
    [InlineData(new[] { "in.ipynb", "-p" }, "run: -p takes a NAME and a VALUE (see lab run --help)")]
    [InlineData(new[] { "in.ipynb", "-f" }, "run: -f needs a value (see lab run --help)")]
    [InlineData(new[] { "in.ipynb", "--no-such-option" }, "run: unknown option --no-such-option (see lab run --help)")]
    [InlineData(new[] { "in.ipynb", "--prepare-only=maybe" }, "run: --prepare-only takes no value (got 'maybe')")]
    public void Given_a_line_lab_run_cannot_use_When_parsed_Then_one_usage_error_says_what_is_wrong(string[] tokens, string message)
    {
        var e = Assert.Throws<LabUsageException>(() => RunArguments.Parse(tokens));

        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Given_the_same_name_in_f_y_and_p_When_merged_Then_p_beats_y_beats_f_whatever_the_order_on_the_line()
    {
        using var scratch = TempDir("params-precedence");
        var file = Path.Combine(scratch.Path, "params.yaml");
        File.WriteAllText(file, "a: from-file\nb: from-file\nc: from-file\n");
        // On the line -p comes first and -f last; papermill's order is by source, not position.
        var a = RunArguments.Parse(["in.ipynb", "-p", "a", "from-p", "-y", "a: from-y\nb: from-y", "-f", file]);

        var merged = ParameterSources.Merge(a.ParameterFiles, a.YamlParameters, a.Parameters);

        Assert.Equal([("a", "from-p"), ("b", "from-y"), ("c", "from-file")], merged);
    }

    [Fact]
    public void Given_later_y_strings_When_merged_Then_the_last_wins_and_keeps_the_first_place()
    {
        var merged = ParameterSources.Merge([], ["x: 1\ny: 2", "x: 3"], []);

        Assert.Equal([("x", "3"), ("y", "2")], merged);
    }

    [Fact]
    public void Given_YAML_values_of_every_kind_When_merged_Then_scalars_stay_text_null_is_null_and_collections_are_JSON()
    {
        var merged = ParameterSources.Merge([], ["""
            points: 60
            label: "run 42"
            quoted: '007'
            on: true
            nothing: ~
            sizes: [4, 8]
            disk: {name: vda, size: 1.5, ro: false, tag: null, id: "12"}
            when: 2026-12-04
            """], []);

        Assert.Equal(
        [
            ("points", "60"), ("label", "run 42"), ("quoted", "007"), ("on", "true"), ("nothing", "null"), ("sizes", "[4,8]"),
            ("disk", """{"name":"vda","size":1.5,"ro":false,"tag":null,"id":"12"}"""), ("when", "2026-12-04"),
        ], merged);
    }

    [Theory]
    [InlineData("a: [1, 2", "-y: not YAML:")]
    [InlineData("- 1\n- 2", "-y: a YAML mapping of NAME: VALUE expected, found a sequence")]
    [InlineData("just words", "-y: a YAML mapping of NAME: VALUE expected, found a scalar")]
    [InlineData("[a]: 1", "-y: a parameter name must be a plain word, not a sequence")]
    public void Given_YAML_that_is_not_a_mapping_of_names_When_merged_Then_a_one_line_usage_error_names_the_source(string yaml, string start)
    {
        var e = Assert.Throws<LabUsageException>(() => ParameterSources.Merge([], [yaml], []));

        Assert.StartsWith(start, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Given_y_naming_a_file_When_merged_Then_the_error_says_to_use_f()
    {
        using var scratch = TempDir("y-file");
        var file = Path.Combine(scratch.Path, "params.yaml");
        File.WriteAllText(file, "a: 1\n");

        var e = Assert.Throws<LabUsageException>(() => ParameterSources.Merge([], [file], []));

        Assert.Equal($"-y {file}: -y takes YAML text (-y 'points: 60'); to read the file, use -f {file}", e.Message);
    }

    [Fact]
    public void Given_f_naming_no_file_When_merged_Then_one_line_says_so()
    {
        var e = Assert.Throws<LabUsageException>(() => ParameterSources.Merge(["/nonexistent/params.yaml"], [], []));

        Assert.Equal("-f /nonexistent/params.yaml: no such file", e.Message);
    }
}
