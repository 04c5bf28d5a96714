using LabNotebooks;

namespace LabNotebooks.Tests;

public sealed class TableTests
{
    private sealed record Sample(string Disk, double LatencyMs, int Iops);

    [Fact]
    public void A_table_from_records_has_one_column_per_property_in_declaration_order()
    {
        var table = new[] { new Sample("vda", 1.23456789, 900), new Sample("vdb<1>", 10, 80) }.ToTable("fio");

        Assert.Equal(["Disk", "LatencyMs", "Iops"], table.Columns);
        Assert.Equal(2, table.Rows.Count);
        Assert.Equal(
            "fio\nDisk    LatencyMs  Iops\n------  ---------  ----\nvda       1.23457   900\nvdb<1>         10    80",
            table.ToText());
    }

    [Fact]
    public void The_html_form_escapes_cells_and_right_aligns_numbers()
    {
        var html = Table.From([new Sample("<script>x</script>", 1, 2)]).ToHtml();

        Assert.Contains("<td style=\"text-align:left\">&lt;script&gt;x&lt;/script&gt;</td>", html);
        Assert.Contains("<th style=\"text-align:right\">Iops</th>", html);
        Assert.DoesNotContain("<script>", html);
    }

    [Fact]
    public void Dictionaries_and_scalars_make_tables_too()
    {
        IReadOnlyDictionary<string, object?>[] rows = [new Dictionary<string, object?> { ["a"] = 1 }, new Dictionary<string, object?> { ["b"] = "x" }];

        Assert.Equal(["a", "b"], Table.From(rows).Columns);
        Assert.Equal(["value"], Table.From([1, 2, 3]).Columns);
    }

    [Fact]
    public void A_row_with_the_wrong_number_of_values_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => new Table(["a", "b"], [[1]]));
    }
}
