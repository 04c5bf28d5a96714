using System.Collections;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json.Nodes;
using LabKernel.Plots;
using LabKernel.Reports;
using LabRunner.Notebooks.Scripting;

namespace LabKernel.Tests.Plots;

/// <summary>
/// LabKernel's types declare their formatters the way Polyglot Notebooks discovers them without a package
/// dependency: an attribute named TypeFormatterSourceAttribute, a source with CreateTypeFormatters(), formatters
/// with MimeType and Format(object, TextWriter). These tests consume them exactly that way.
/// </summary>
public sealed class FormatterConventionTests
{
    [Theory]
    [InlineData(typeof(Figure))]
    [InlineData(typeof(Table))]
    public void The_type_carries_an_attribute_named_TypeFormatterSourceAttribute_with_a_FormatterSourceType(Type type)
    {
        var attribute = type.GetCustomAttributes(true).Single(a => a.GetType().Name == "TypeFormatterSourceAttribute");

        var sourceType = Assert.IsAssignableFrom<Type>(attribute.GetType().GetProperty("FormatterSourceType")!.GetValue(attribute));
        Assert.NotNull(sourceType.GetMethod("CreateTypeFormatters"));
        Assert.NotNull(Activator.CreateInstance(sourceType));
    }

    [Fact]
    public void Formatters_compile_into_the_delegate_shape_Polyglot_builds_and_format_a_figure()
    {
        var figure = Figure.Create("F").Line("a", [1, 2], [3, 4]);
        var attribute = typeof(Figure).GetCustomAttributes(true).Single(a => a.GetType().Name == "TypeFormatterSourceAttribute");
        var sourceType = (Type)attribute.GetType().GetProperty("FormatterSourceType")!.GetValue(attribute)!;
        var source = Activator.CreateInstance(sourceType)!;
        var formatters = (IEnumerable)sourceType.GetMethod("CreateTypeFormatters")!.Invoke(source, null)!;

        var outputs = new Dictionary<string, string>();
        foreach (var formatter in formatters)
        {
            var mime = (string)formatter.GetType().GetProperty("MimeType")!.GetValue(formatter)!;
            var target = (Type)formatter.GetType().GetProperty("Type")!.GetValue(formatter)!;
            // As Polyglot does: GetMethod("Format") by name, Expression.Call with (object, TextWriter) parameters.
            var method = formatter.GetType().GetMethod("Format")!;
            var value = Expression.Parameter(typeof(object));
            var writer = Expression.Parameter(typeof(TextWriter));
            var call = Expression.Lambda<Func<object, TextWriter, bool>>(Expression.Call(Expression.Constant(formatter), method, value, writer), value, writer).Compile();
            if (target != typeof(Figure))
            {
                continue;
            }
            using var sw = new StringWriter();
            Assert.True(call(figure, sw));
            outputs[mime] = sw.ToString();
        }

        Assert.Equal(["application/vnd.plotly.v1+json", "text/html", "text/plain"], outputs.Keys.Order());
        Assert.Equal("scatter", JsonNode.Parse(outputs["application/vnd.plotly.v1+json"])!["data"]![0]!["type"]!.GetValue<string>());
        Assert.Contains("Plotly.newPlot", outputs["text/html"]);
    }

    [Fact]
    public void The_lab_display_formatter_finds_the_same_formatters_and_makes_a_mime_bundle()
    {
        var bundle = DisplayFormatter.Format(Figure.Create("F").Bar("b", ["x"], [1]));

        Assert.IsType<JsonObject>(bundle["application/vnd.plotly.v1+json"]);
        Assert.Contains("Figure \"F\"", bundle["text/plain"]!.GetValue<string>());
        Assert.NotNull(bundle["text/html"]);
    }

    [Fact]
    public void Collections_of_records_display_as_tables_and_everything_has_text_plain()
    {
        var bundle = DisplayFormatter.Format(new[] { new { A = 1, B = "<x>" } });

        Assert.Contains("&lt;x&gt;", bundle["text/html"]!.GetValue<string>());
        Assert.Equal("[ { A = 1, B = <x> } ]", bundle["text/plain"]!.GetValue<string>());
        Assert.Equal("<null>", DisplayFormatter.Format(null)["text/plain"]!.GetValue<string>());
        Assert.Equal(["text/plain"], DisplayFormatter.Format(42).Select(kv => kv.Key));
    }

    [Fact]
    public void Asking_for_mime_types_keeps_those_and_text_plain()
    {
        var bundle = DisplayFormatter.Format(Figure.Create("F").Bar("b", ["x"], [1]), ["application/vnd.plotly.v1+json"]);

        Assert.Equal(["application/vnd.plotly.v1+json", "text/plain"], bundle.Select(kv => kv.Key).Order());
    }

    [Fact]
    public void The_attribute_is_internal_so_it_cannot_clash_with_the_notebook_kernel_s_own()
    {
        var attributeType = typeof(Figure).GetCustomAttributes(true).Single(a => a.GetType().Name == "TypeFormatterSourceAttribute").GetType();

        Assert.False(attributeType.IsPublic);
        Assert.Equal("LabKernel.Reports", attributeType.Namespace);
        Assert.Equal(AttributeTargets.Class | AttributeTargets.Struct, attributeType.GetCustomAttribute<AttributeUsageAttribute>()!.ValidOn);
    }
}
