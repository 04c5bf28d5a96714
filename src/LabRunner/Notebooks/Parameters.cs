using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LabRunner.Notebooks;

/// <summary>A variable declared in the cell tagged <c>parameters</c>: its name, declared type (null for var) and default.</summary>
public sealed record NotebookParameter(string Name, string? DeclaredType, string DefaultText);

/// <summary>
/// Papermill-style parameters: the cell tagged <c>parameters</c> declares the defaults; values given with
/// <c>-p NAME VALUE</c> become assignments in a new cell tagged <c>injected-parameters</c> right after it, typed
/// by each default's declared type (or the type of its literal for <c>var</c>), and are recorded in the
/// notebook metadata (<c>metadata.lab.parameters</c>).
/// </summary>
public static class Parameters
{
    public const string ParametersTag = "parameters";
    public const string InjectedTag = "injected-parameters";

    public static IReadOnlyList<NotebookParameter> Declared(NotebookCell cell)
    {
        var tree = CSharpSyntaxTree.ParseText(cell.Source, new CSharpParseOptions(LanguageVersion.Preview, kind: SourceCodeKind.Script));
        var result = new List<NotebookParameter>();
        foreach (var decl in tree.GetRoot().DescendantNodes().OfType<VariableDeclarationSyntax>())
        {
            if (decl.Parent is not (FieldDeclarationSyntax or LocalDeclarationStatementSyntax))
            {
                continue;
            }
            var type = decl.Type.IsVar ? null : decl.Type.ToString();
            foreach (var v in decl.Variables)
            {
                var init = v.Initializer?.Value;
                result.Add(new NotebookParameter(v.Identifier.Text, type ?? InferType(init), init?.ToString() ?? ""));
            }
        }
        return result;
    }

    /// <summary>
    /// Injects <paramref name="values"/> into <paramref name="notebook"/>. Throws <see cref="LabUsageException"/>
    /// for a name the parameters cell does not declare (listing the known ones) or a value that does not fit its type.
    /// </summary>
    public static void Inject(Notebook notebook, IReadOnlyList<(string Name, string Value)> values)
    {
        notebook.Cells.RemoveAll(c => c.HasTag(InjectedTag));
        var recorded = new JsonObject();
        notebook.LabMetadata["parameters"] = recorded;
        if (values.Count == 0)
        {
            return;
        }
        var cell = notebook.Cells.FirstOrDefault(c => c.Kind == CellKind.Code && c.HasTag(ParametersTag))
            ?? throw new LabUsageException($"{notebook.SourcePath} has no cell tagged '{ParametersTag}', so -p {Shown(values[0].Name)} cannot be set");
        var declared = Declared(cell);
        var code = new StringBuilder("// Parameters injected by lab run\n");
        foreach (var (name, value) in values)
        {
            var p = declared.FirstOrDefault(d => d.Name == name)
                ?? throw new LabUsageException($"unknown parameter '{Shown(name)}'; the parameters cell declares: {(declared.Count == 0 ? "(nothing)" : string.Join(", ", declared.Select(d => d.Name)))}");
            var (literal, json) = Render(p, value);
            if (literal.StartsWith(JsonHelperName, StringComparison.Ordinal) && !code.ToString().Contains(JsonHelper, StringComparison.Ordinal))
            {
                code.Append(JsonHelper).Append('\n');
            }
            code.Append(name).Append(" = ").Append(literal).Append(";\n");
            recorded[name] = json;
        }
        var meta = new JsonObject
        {
            ["tags"] = new JsonArray(InjectedTag),
            ["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" },
        };
        var injected = new NotebookCell(CellKind.Code, code.ToString().TrimEnd('\n'), Languages.CSharp, meta);
        notebook.Cells.Insert(notebook.Cells.IndexOf(cell) + 1, injected);
    }

    private const string JsonHelperName = "__labParameterJson";

    /// <summary>Reads a JSON value as the static type of the variable it replaces (so <c>var</c> defaults work too).</summary>
    private const string JsonHelper =
        "static T " + JsonHelperName + "<T>(T current, string json) => System.Text.Json.JsonSerializer.Deserialize<T>(json, "
        + "new System.Text.Json.JsonSerializerOptions { PropertyNameCaseInsensitive = true }) ?? throw new System.ArgumentException($\"parameter value {json} is null\");";

    /// <summary>The C# expression for <paramref name="value"/> as the parameter's type, and the value as JSON.</summary>
    internal static (string Literal, JsonNode? Json) Render(NotebookParameter p, string value)
    {
        var type = (p.DeclaredType ?? "").Replace("System.", "", StringComparison.Ordinal).TrimEnd('?');
        var nullable = p.DeclaredType?.EndsWith('?') == true;
        if (nullable && value == "null")
        {
            return ("null", null);
        }
        var inv = CultureInfo.InvariantCulture;
        switch (type)
        {
            case "string" or "String":
                return (SymbolDisplay.FormatLiteral(value, quote: true), JsonValue.Create(value));
            case "int" or "Int32":
                return int.TryParse(value, NumberStyles.Integer, inv, out var i) ? (i.ToString(inv), JsonValue.Create(i)) : throw Mismatch(p, value, "an int");
            case "long" or "Int64":
                return long.TryParse(value, NumberStyles.Integer, inv, out var l) ? (l.ToString(inv) + "L", JsonValue.Create(l)) : throw Mismatch(p, value, "a long");
            case "double" or "Double":
                return double.TryParse(value, NumberStyles.Float, inv, out var d) && double.IsFinite(d) ? (d.ToString("R", inv) + "d", JsonValue.Create(d)) : throw Mismatch(p, value, "a double");
            case "float" or "Single":
                return float.TryParse(value, NumberStyles.Float, inv, out var f) && float.IsFinite(f) ? (f.ToString("R", inv) + "f", JsonValue.Create(f)) : throw Mismatch(p, value, "a float");
            case "decimal" or "Decimal":
                return decimal.TryParse(value, NumberStyles.Float, inv, out var m) ? (m.ToString(inv) + "m", JsonValue.Create(m)) : throw Mismatch(p, value, "a decimal");
            case "bool" or "Boolean":
                return value.ToLowerInvariant() switch
                {
                    "true" or "1" or "yes" => ("true", JsonValue.Create(true)),
                    "false" or "0" or "no" => ("false", JsonValue.Create(false)),
                    _ => throw Mismatch(p, value, "a bool (true/false)"),
                };
            case "TimeSpan":
                // Seconds must fit a TimeSpan (NaN, infinities and 1e300 would only fail later, inside the kernel).
                return double.TryParse(value, NumberStyles.Float, inv, out var secs) && Math.Abs(secs) < TimeSpan.MaxValue.TotalSeconds
                    ? ($"System.TimeSpan.FromSeconds({secs.ToString("R", inv)})", JsonValue.Create(secs))
                    : TimeSpan.TryParse(value, inv, out var ts) ? ($"System.TimeSpan.Parse(\"{ts.ToString("c", inv)}\")", JsonValue.Create(ts.ToString("c", inv))) : throw Mismatch(p, value, "seconds or a TimeSpan");
        }
        // Anything else (arrays, lists, records): the value is JSON, deserialized into the declared type.
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(value, documentOptions: NotebookReader.StrictJson);
        }
        catch (JsonException e)
        {
            throw Mismatch(p, value, $"JSON for {p.DeclaredType ?? "the parameter"} ({NotebookReader.OneLine(e.Message)})");
        }
        // The helper takes the variable's own static type, so this works for `var` defaults too.
        // The notebook's kernel has no lab assembly, so the injected cell declares this helper itself (JsonHelper).
        var literal = $"{JsonHelperName}({p.Name}, {SymbolDisplay.FormatLiteral(node?.ToJsonString() ?? "null", quote: true)})";
        return (literal, node);
    }

    private static string? InferType(ExpressionSyntax? init) => init switch
    {
        LiteralExpressionSyntax lit when lit.IsKind(SyntaxKind.StringLiteralExpression) => "string",
        LiteralExpressionSyntax lit when lit.IsKind(SyntaxKind.TrueLiteralExpression) || lit.IsKind(SyntaxKind.FalseLiteralExpression) => "bool",
        LiteralExpressionSyntax lit when lit.IsKind(SyntaxKind.NumericLiteralExpression) => lit.Token.Value switch
        {
            int => "int",
            long => "long",
            float => "float",
            decimal => "decimal",
            _ => "double",
        },
        PrefixUnaryExpressionSyntax { Operand: var operand } => InferType(operand),
        InterpolatedStringExpressionSyntax => "string",
        _ => null,
    };

    private static LabUsageException Mismatch(NotebookParameter p, string value, string expected) =>
        new($"parameter '{p.Name}' expects {expected}, got '{Shown(value)}'");

    /// <summary>A value as the one-line message shows it: control characters (newlines, NUL) escaped as in C#.</summary>
    private static string Shown(string value) => SymbolDisplay.FormatLiteral(value, quote: false);
}
