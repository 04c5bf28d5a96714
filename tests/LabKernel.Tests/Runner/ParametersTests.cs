using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

public sealed class ParametersTests
{
    private static Notebook Notebook(string parameters) => new("p.ipynb", NotebookFormat.Ipynb, [],
    [
        new NotebookCell(CellKind.Code, parameters, "csharp", new System.Text.Json.Nodes.JsonObject { ["tags"] = new System.Text.Json.Nodes.JsonArray("parameters") }),
        new NotebookCell(CellKind.Code, "Console.WriteLine(n);", "csharp"),
    ]);

    [Fact]
    public void Declared_parameters_carry_their_declared_or_inferred_types()
    {
        var nb = Notebook("int n = 1;\nvar rate = 2.5;\nvar name = \"a\";\nbool on = false;\nint[] sizes = [1, 2];\nvar big = 10L;");

        var declared = Parameters.Declared(nb.Cells[0]);

        Assert.Equal(
            [("n", "int"), ("rate", "double"), ("name", "string"), ("on", "bool"), ("sizes", "int[]"), ("big", "long")],
            declared.Select(d => (d.Name, d.DeclaredType!)));
    }

    [Fact]
    public void Values_are_injected_as_typed_assignments_in_a_cell_right_after_the_parameters_cell()
    {
        var nb = Notebook("int n = 1;\nvar rate = 2.5;\nstring name = \"a\";\nbool on = false;\nint[] sizes = [1];");

        Parameters.Inject(nb, [("n", "42"), ("rate", "0.25"), ("name", "say \"hi\"\n"), ("on", "true"), ("sizes", "[4, 8]")]);

        var injected = nb.Cells[1];
        Assert.True(injected.HasTag("injected-parameters"));
        Assert.Contains("n = 42;", injected.Source);
        Assert.Contains("rate = 0.25d;", injected.Source);
        Assert.Contains("name = \"say \\\"hi\\\"\\n\";", injected.Source);
        Assert.Contains("on = true;", injected.Source);
        Assert.Contains("sizes = __labParameterJson(sizes, \"[4,8]\");", injected.Source);
        var recorded = nb.LabMetadata["parameters"]!.AsObject();
        Assert.Equal(42, recorded["n"]!.GetValue<int>());
        Assert.Equal("say \"hi\"\n", recorded["name"]!.GetValue<string>());
        Assert.Equal(8, recorded["sizes"]![1]!.GetValue<int>());
    }

    [Fact]
    public void An_unknown_parameter_is_a_usage_error_listing_the_known_ones()
    {
        var nb = Notebook("int n = 1;\nstring name = \"a\";");

        var e = Assert.Throws<LabUsageException>(() => Parameters.Inject(nb, [("m", "1")]));

        Assert.Equal("unknown parameter 'm'; the parameters cell declares: n, name", e.Message);
    }

    [Theory]
    [InlineData("n", "abc", "parameter 'n' expects an int, got 'abc'")]
    [InlineData("on", "maybe", "parameter 'on' expects a bool (true/false), got 'maybe'")]
    public void A_value_that_does_not_fit_the_declared_type_is_a_usage_error(string name, string value, string message)
    {
        var nb = Notebook("int n = 1;\nbool on = false;");

        var e = Assert.Throws<LabUsageException>(() => Parameters.Inject(nb, [(name, value)]));

        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Parameters_for_a_notebook_without_a_parameters_cell_are_a_usage_error()
    {
        var nb = new Notebook("plain.ipynb", NotebookFormat.Ipynb, [], [new NotebookCell(CellKind.Code, "1", "csharp")]);

        var e = Assert.Throws<LabUsageException>(() => Parameters.Inject(nb, [("n", "1")]));

        Assert.Contains("has no cell tagged 'parameters'", e.Message);
    }
}
