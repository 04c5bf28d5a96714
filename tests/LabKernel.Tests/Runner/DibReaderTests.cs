using System.Text.Json.Nodes;
using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

/// <summary>
/// .dib files are read by Polyglot Notebooks' own parser (Microsoft.DotNet.Interactive.Documents' CodeSubmission),
/// so <c>lab run</c> sees the cells VS Code shows. These pin where that parser differs from the runner's earlier
/// hand-written reader, and what the runner adds around it (the parameters tag, line endings, one-line errors).
/// </summary>
public sealed class DibReaderTests
{
    private const string Meta = """{"kernelInfo":{"defaultKernelName":"csharp","items":[{"aliases":[],"name":"csharp"}]}}""";

    [Fact]
    public void Given_text_before_the_first_kernel_line_When_read_Then_it_is_a_csharp_cell_as_VS_Code_shows_it()
    {
        var nb = NotebookReader.ParseDib("x.dib", "var early = 1;\n\n#!markdown\n\n# Title\n\n#!csharp\n\nearly\n");

        Assert.Equal([CellKind.Code, CellKind.Markdown, CellKind.Code], nb.Cells.Select(c => c.Kind));
        Assert.Equal("var early = 1;", nb.Cells[0].Source);
        Assert.Equal("csharp", nb.Cells[0].Language);
    }

    [Theory]
    [InlineData("#!CSharp")]
    [InlineData("#!csharp ")]
    [InlineData("#!Markdown")]
    public void Given_a_kernel_line_in_another_case_or_with_trailing_spaces_When_read_Then_it_stays_in_the_cell_above_as_VS_Code_reads_it(string line)
    {
        var nb = NotebookReader.ParseDib("x.dib", $"#!csharp\n1\n{line}\n2\n");

        var cell = Assert.Single(nb.Cells);
        Assert.Equal($"1\n{line}\n2", cell.Source);
    }

    [Theory]
    [InlineData("#!c#", "csharp")]
    [InlineData("#!C#", "csharp")]
    [InlineData("#!cs", "csharp")]
    [InlineData("#!fs", "fsharp")]
    [InlineData("#!F#", "fsharp")]
    [InlineData("#!powershell", "pwsh")]
    [InlineData("#!js", "javascript")]
    [InlineData("#!sql", "sql")]
    public void Given_a_kernel_alias_When_read_Then_the_cell_has_the_kernels_name(string line, string language)
    {
        var nb = NotebookReader.ParseDib("x.dib", $"{line}\n\nx\n");

        Assert.Equal(language, Assert.Single(nb.Cells).Language);
    }

    [Fact]
    public void Given_md_When_read_Then_the_cell_is_markdown()
    {
        var nb = NotebookReader.ParseDib("x.dib", "#!md\n\n# Title\n");

        Assert.Equal(CellKind.Markdown, Assert.Single(nb.Cells).Kind);
    }

    [Fact]
    public void Given_a_kernel_line_with_nothing_under_it_When_read_Then_it_makes_no_cell()
    {
        var nb = NotebookReader.ParseDib("x.dib", "#!csharp\n\n#!markdown\n\n\n#!csharp\n\n1\n");

        Assert.Equal("1", Assert.Single(nb.Cells).Source);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n")]
    public void Given_an_empty_dib_When_read_Then_it_has_no_cells_and_csharp_as_its_default_kernel(string text)
    {
        var nb = NotebookReader.ParseDib("x.dib", text);

        Assert.Empty(nb.Cells);
        Assert.Equal("csharp", nb.Metadata["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());
    }

    [Fact]
    public void Given_a_kernel_the_meta_block_declares_When_read_Then_its_name_and_aliases_start_cells_and_the_metadata_keeps_it()
    {
        const string meta = """{"kernelInfo":{"defaultKernelName":"csharp","items":[{"aliases":[],"name":"csharp"},{"aliases":["wv"],"languageName":"HTML","name":"webview"}]},"custom":{"a":[1,2]}}""";

        var nb = NotebookReader.ParseDib("x.dib", $"#!meta\n\n{meta}\n\n#!webview\n\n<b>x</b>\n\n#!wv\n\n<i>y</i>\n\n#!csharp\n\n1\n");

        Assert.Equal(["webview", "webview", "csharp"], nb.Cells.Select(c => c.Language!));
        var polyglot = nb.Metadata["polyglot_notebook"]!.AsObject();
        var items = polyglot["kernelInfo"]!["items"]!.AsArray();
        Assert.Equal(["csharp", "webview"], items.Select(i => i!["name"]!.GetValue<string>()));
        Assert.Equal("HTML", items[1]!["languageName"]!.GetValue<string>());
        Assert.Equal("wv", items[1]!["aliases"]![0]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"a":[1,2]}"""), polyglot["custom"]));
    }

    [Theory]
    [InlineData("{not json", "not JSON metadata")]
    [InlineData("[1, 2]", "not JSON metadata")]
    [InlineData("""{"kernelInfo":"csharp"}""", "not JSON metadata")]
    [InlineData("""{"kernelInfo":{"items":[{"name":"#!bad"}]}}""", "declares a kernel Polyglot refuses")]
    [InlineData("""{"kernelInfo":{"items":[{"name":"a","aliases":["x"]},{"name":"b","aliases":["x"]}]}}""", "declares a kernel Polyglot refuses")]
    [InlineData("""{"kernelInfo":{"items":[{"name":"other","aliases":["cs"]}]}}""", "declares a kernel Polyglot refuses")]
    [InlineData("""{"custom":{"a":1,"a":2}}""", "not JSON metadata")]
    public void Given_a_meta_block_Polyglot_refuses_When_read_Then_it_is_a_one_line_usage_error_naming_the_file(string meta, string expected)
    {
        var e = Assert.Throws<LabUsageException>(() => NotebookReader.ParseDib("broken.dib", $"#!meta\n\n{meta}\n\n#!csharp\n\n1\n"));

        Assert.StartsWith("broken.dib is not a valid notebook: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r")]
    [InlineData("\n")]
    public void Given_any_line_ending_When_read_Then_the_cells_are_the_same(string newline)
    {
        var text = string.Join(newline, "#!meta", "", Meta, "", "#!markdown", "", "# T", "", "#!csharp", "", "// parameters", "var a = 1;", "");

        var nb = NotebookReader.ParseDib("x.dib", text);

        Assert.Equal(["# T", "// parameters\nvar a = 1;"], nb.Cells.Select(c => c.Source));
        Assert.True(nb.Cells[1].HasTag("parameters"));
    }

    [Fact]
    public void Given_a_meta_block_last_in_a_file_without_a_final_newline_When_read_Then_the_cell_above_keeps_its_own_text()
    {
        var nb = NotebookReader.ParseDib("x.dib", $"#!csharp\n\n1\n\n#!meta\n\n{Meta}");

        Assert.Equal("1", Assert.Single(nb.Cells).Source);
        Assert.Equal("csharp", nb.Metadata["polyglot_notebook"]!["kernelInfo"]!["items"]![0]!["name"]!.GetValue<string>());
    }

    [Fact]
    public void Given_a_blank_line_of_spaces_above_the_parameters_comment_When_read_Then_the_cell_is_still_the_parameters_cell()
    {
        var nb = NotebookReader.ParseDib("x.dib", "#!csharp\n   \n// Parameters\nvar n = 1;\n");

        var cell = Assert.Single(nb.Cells);
        Assert.True(cell.HasTag("parameters"));
        Assert.Equal("   \n// Parameters\nvar n = 1;", cell.Source);
    }

    [Fact]
    public void Given_the_experiment_notebooks_When_read_Then_each_has_its_meta_a_parameters_cell_and_only_csharp_and_markdown_cells()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RunnerTestSupport.RepoRoot, "notebooks", "src"), "*.dib"))
        {
            var text = File.ReadAllText(file);
            var nb = NotebookReader.ParseDib(file, text);

            Assert.Equal(text.Split('\n').Count(l => l is "#!csharp" or "#!markdown"), nb.Cells.Count);
            Assert.Single(nb.Cells, c => c.HasTag("parameters"));
            Assert.All(nb.Cells, c => Assert.True(c.Kind == CellKind.Markdown || c.Language == "csharp", $"{file}: {c.FirstLine}"));
            Assert.Equal("csharp", nb.Metadata["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());
        }
    }
}
