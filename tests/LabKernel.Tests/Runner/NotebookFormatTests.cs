using LabRunner.Notebooks;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

public sealed class NotebookFormatTests
{
    [Fact]
    public void An_ipynb_saved_by_VS_Code_reads_as_csharp_and_markdown_cells_with_their_tags()
    {
        var nb = NotebookReader.Read(Fixture("vscode.ipynb"));

        Assert.Equal(NotebookFormat.Ipynb, nb.Format);
        Assert.Equal(7, nb.Cells.Count);
        Assert.Equal(CellKind.Markdown, nb.Cells[0].Kind);
        Assert.All(nb.Cells.Skip(1).Take(5), c => Assert.Equal("csharp", c.Language));
        Assert.Equal("fsharp", nb.Cells[6].Language);
        Assert.True(nb.Cells[2].HasTag("parameters"));
        Assert.StartsWith("#r \"nuget: LabKernel, 0.1.0\"\n#r \"nuget: LabNotebooks, 0.1.0\"", nb.Cells[1].Source);
    }

    [Fact]
    public void A_cell_language_comes_from_dotnet_interactive_metadata_when_polyglot_metadata_is_absent()
    {
        const string json = """
            {"cells":[{"cell_type":"code","execution_count":null,"metadata":{"dotnet_interactive":{"language":"pwsh"}},"outputs":[],"source":["dir"]},
                      {"cell_type":"code","execution_count":null,"metadata":{},"outputs":[],"source":"1+1"}],
             "metadata":{"kernelspec":{"display_name":".NET (C#)","language":"C#","name":".net-csharp"}},"nbformat":4,"nbformat_minor":4}
            """;
        var nb = NotebookReader.ParseIpynb("x.ipynb", json);

        Assert.Equal("pwsh", nb.Cells[0].Language);
        Assert.Equal("fsharp", NotebookReader.ParseIpynb("y.ipynb", json.Replace("\"1+1\"", "\"#!fsharp\\n1+1\"", StringComparison.Ordinal)).Cells[1].Language);
        Assert.Equal("csharp", nb.Cells[1].Language);
        Assert.Equal("1+1", nb.Cells[1].Source);
    }

    [Fact]
    public void A_dib_file_splits_into_cells_at_kernel_lines_and_keeps_magic_commands_inside_cells()
    {
        var nb = NotebookReader.Read(Fixture("sample.dib"));

        Assert.Equal([CellKind.Markdown, CellKind.Code, CellKind.Code, CellKind.Code, CellKind.Code], nb.Cells.Select(c => c.Kind));
        Assert.Equal(["csharp", "csharp", "pwsh", "csharp"], nb.Cells.Skip(1).Select(c => c.Language!));
        Assert.True(nb.Cells[1].HasTag("parameters"));
        Assert.StartsWith("#!time\nvar total", nb.Cells[4].Source);
        Assert.StartsWith("# A .dib notebook", nb.Cells[0].Source);
    }

    [Fact]
    public void A_csx_script_is_one_csharp_cell_with_its_shebang_blanked_but_line_numbers_kept()
    {
        var nb = NotebookReader.Read(Fixture("script.csx"));

        var cell = Assert.Single(nb.Cells);
        Assert.Equal("csharp", cell.Language);
        Assert.Equal("#load \"lib/helper.csx\"", cell.Source.Split('\n')[1]);
        Assert.Equal("", cell.Source.Split('\n')[0]);
    }

    [Theory]
    [InlineData("not json at all", "not JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("""{"cells":[],"nbformat":3}""", "nbformat 3")]
    [InlineData("""{"nbformat":4,"nbformat_minor":5,"metadata":{}}""", "no \"cells\"")]
    [InlineData("""{"nbformat":4,"cells":[{"cell_type":"widget","source":""}]}""", "cell_type 'widget'")]
    public void An_invalid_notebook_is_a_usage_error_that_names_the_file_and_the_problem(string text, string expected)
    {
        var e = Assert.Throws<LabUsageException>(() => NotebookReader.ParseIpynb("broken.ipynb", text));

        Assert.Contains("broken.ipynb", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void The_writer_produces_nbformat_4_5_with_unique_cell_ids_and_sources_as_lines()
    {
        var nb = NotebookReader.Read(Fixture("vscode.ipynb"));
        nb.Cells[1].Id = "same";
        nb.Cells[2].Id = "same";

        var json = NotebookWriter.ToJson(nb);

        Assert.Equal(4, json["nbformat"]!.GetValue<int>());
        Assert.Equal(5, json["nbformat_minor"]!.GetValue<int>());
        var ids = json["cells"]!.AsArray().Select(c => c!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.Matches("^[a-zA-Z0-9_-]{1,64}$", id));
        Assert.Equal("int samples = 20;\n", json["cells"]![2]!["source"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_dib_converted_to_ipynb_without_running_passes_the_nbformat_validator()
    {
        using var scratch = TempDir("convert");
        var dir = scratch.Path;
        var path = Path.Combine(dir, "sample.ipynb");
        NotebookWriter.Save(NotebookReader.Read(Fixture("sample.dib")), path);

        await AssertValidNotebookAsync(path);
    }
}
