using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LabRunner.Notebooks;

/// <summary>
/// The parameters of a run from every place papermill takes them, merged in papermill's order: each <c>-f FILE</c>
/// (a YAML mapping), then each <c>-y YAML</c> string, then each <c>-p NAME VALUE</c>; a later value of a name
/// replaces an earlier one and keeps the earlier one's place. The values stay text here: the parameters cell's
/// declared types decide what they become (<see cref="Parameters.Render"/>), so a YAML <c>60</c> and a <c>-p</c>
/// <c>60</c> inject the same thing. A YAML sequence or mapping becomes its JSON text (for an <c>int[]</c>, a record).
/// </summary>
public static class ParameterSources
{
    public static IReadOnlyList<(string Name, string Value)> Merge(
        IEnumerable<string> files,
        IEnumerable<string> yamlStrings,
        IEnumerable<(string Name, string Value)> pairs)
    {
        var merged = new List<(string Name, string Value)>();
        void Set(string name, string value)
        {
            var at = merged.FindIndex(p => p.Name == name);
            if (at >= 0)
            {
                merged[at] = (name, value);
            }
            else
            {
                merged.Add((name, value));
            }
        }
        foreach (var file in files)
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new LabUsageException($"-f {file}: {(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : NotebookReader.OneLine(e.Message))}");
            }
            foreach (var (name, value) in FromYaml(text, $"-f {file}"))
            {
                Set(name, value);
            }
        }
        foreach (var yaml in yamlStrings)
        {
            foreach (var (name, value) in FromYaml(yaml, "-y"))
            {
                Set(name, value);
            }
        }
        foreach (var (name, value) in pairs)
        {
            Set(name, value);
        }
        return merged;
    }

    /// <summary>The NAME: VALUE pairs of a YAML mapping, in order (an empty document is none).</summary>
    internal static IReadOnlyList<(string Name, string Value)> FromYaml(string yaml, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new LabUsageException($"{source}: not YAML: {NotebookReader.OneLine(e.Message)} (line {e.Start.Line}, column {e.Start.Column})");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return [];
        }
        if (stream.Documents.Count > 1)
        {
            throw new LabUsageException($"{source}: one YAML document of NAME: VALUE expected, found {stream.Documents.Count}");
        }
        if (stream.Documents[0].RootNode is YamlScalarNode { Value: { } word } && source == "-y" && File.Exists(word))
        {
            throw new LabUsageException($"-y {word}: -y takes YAML text (-y 'points: 60'); to read the file, use -f {word}");
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode mapping)
        {
            throw new LabUsageException($"{source}: a YAML mapping of NAME: VALUE expected, found a {Kind(stream.Documents[0].RootNode)}");
        }
        var result = new List<(string, string)>();
        foreach (var (key, value) in mapping.Children)
        {
            if (key is not YamlScalarNode { Value: { Length: > 0 } name })
            {
                throw new LabUsageException($"{source}: a parameter name must be a plain word, not a {Kind(key)}");
            }
            result.Add((name, Text(value, source)));
        }
        return result;
    }

    /// <summary>
    /// A value as <c>-p</c> would give it: a scalar's text (a plain null as <c>null</c>), a sequence or mapping as JSON.
    /// </summary>
    internal static string Text(YamlNode node, string source) => node switch
    {
        YamlScalarNode s when s.Style == ScalarStyle.Plain && IsNull(s.Value) => "null",
        YamlScalarNode s => s.Value ?? "",
        _ => ToJson(node, source)?.ToJsonString() ?? "null",
    };

    /// <summary>YAML 1.2's core schema for what a plain scalar inside a sequence or mapping is; quoted ones are strings.</summary>
    private static JsonNode? ToJson(YamlNode node, string source)
    {
        switch (node)
        {
            case YamlSequenceNode seq:
                return new JsonArray([.. seq.Children.Select(c => ToJson(c, source))]);
            case YamlMappingNode map:
                var o = new JsonObject();
                foreach (var (k, v) in map.Children)
                {
                    var key = (k as YamlScalarNode)?.Value ?? throw new LabUsageException($"{source}: a mapping key must be a scalar, not a {Kind(k)}");
                    if (o.ContainsKey(key))
                    {
                        throw new LabUsageException($"{source}: the key '{key}' is given twice");
                    }
                    o[key] = ToJson(v, source);
                }
                return o;
            case YamlScalarNode { Style: ScalarStyle.Plain, Value: var text }:
                if (IsNull(text))
                {
                    return null;
                }
                if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
                {
                    return JsonValue.Create(text[0] is 't' or 'T');
                }
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
                {
                    return JsonValue.Create(l);
                }
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
                {
                    return JsonValue.Create(d);
                }
                return JsonValue.Create(text);
            case YamlScalarNode s:
                return JsonValue.Create(s.Value ?? "");
            default:
                throw new LabUsageException($"{source}: a YAML alias or tag that lab run does not read");
        }
    }

    private static bool IsNull(string? text) => text is null or "" or "~" or "null" or "Null" or "NULL";

    private static string Kind(YamlNode node) => node switch
    {
        YamlSequenceNode => "sequence",
        YamlMappingNode => "mapping",
        _ => "scalar",
    };
}
