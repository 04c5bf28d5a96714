using System.Text;
using System.Text.RegularExpressions;

namespace LabKernel.Tests.Architecture;

/// <summary>One reason a namespace depends on another: the file and what in it refers across.</summary>
internal sealed record Reference(string File, string Text)
{
    public override string ToString() => $"{File}: {Text}";
}

/// <summary>
/// The namespace dependency graph of a folder of C# sources, read from the text: a namespace depends on another
/// when one of its files has <c>using Other;</c> (plain, static or alias) or names a type of the other qualified
/// in code (<c>Host.LabFiles</c>, <c>LabKernel.Machines.Accelerator</c>). Comments (and so XML doc crefs), string
/// and character literals are not code; the holes of interpolated strings are. Every namespace under the root
/// namespace sees the root's types without a using, so each one is taken to depend on the root.
/// </summary>
internal sealed partial class NamespaceGraph
{
    private readonly Dictionary<string, Dictionary<string, List<Reference>>> _edges = new(StringComparer.Ordinal);

    private NamespaceGraph(string rootNamespace) => RootNamespace = rootNamespace;

    public string RootNamespace { get; }

    public IReadOnlyCollection<string> Namespaces => _edges.Keys;

    /// <summary>What <paramref name="from"/> depends on, with the references that make each dependency.</summary>
    public IReadOnlyDictionary<string, List<Reference>> DependenciesOf(string from) =>
        _edges.TryGetValue(from, out var d) ? d : new Dictionary<string, List<Reference>>();

    public static NamespaceGraph FromFolder(string folder, string rootNamespace)
    {
        var files = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(Path.GetRelativePath(folder, f)))
            .Order(StringComparer.Ordinal)
            .Select(f => (Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllText(f)));
        return FromSources(files, rootNamespace);
    }

    public static NamespaceGraph FromSources(IEnumerable<(string Name, string Text)> sources, string rootNamespace)
    {
        var graph = new NamespaceGraph(rootNamespace);
        var files = sources.Select(s =>
        {
            var code = CodeOnly(s.Text);
            var ns = NamespaceDeclaration().Match(code) is { Success: true } m ? m.Groups[1].Value : rootNamespace;
            return (s.Name, Code: code, Namespace: ns);
        }).ToList();

        var types = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            graph._edges.TryAdd(f.Namespace, new Dictionary<string, List<Reference>>(StringComparer.Ordinal));
            if (!types.TryGetValue(f.Namespace, out var set))
            {
                types[f.Namespace] = set = new HashSet<string>(StringComparer.Ordinal);
            }
            foreach (Match t in TypeDeclaration().Matches(f.Code))
            {
                set.Add(t.Groups[1].Success ? t.Groups[1].Value : t.Groups[2].Value);
            }
        }

        // Longest first, so LabKernel.Host wins over LabKernel for "LabKernel.Host.LabFiles".
        var namespaces = types.Keys.OrderByDescending(n => n.Length).ToList();
        foreach (var f in files)
        {
            foreach (Match u in UsingDirective().Matches(f.Code))
            {
                var target = u.Groups[1].Value;
                var ns = namespaces.FirstOrDefault(n => target == n || target.StartsWith(n + ".", StringComparison.Ordinal));
                if (ns is not null)
                {
                    graph.Add(f.Namespace, ns, new Reference(f.Name, u.Value.Trim()));
                }
            }
            var body = UsingDirective().Replace(NamespaceDeclaration().Replace(f.Code, ""), "");
            foreach (Match q in DottedName().Matches(body))
            {
                // Each way to read the name as namespace.Type...: "Host.LabFiles.Refuse" is Host's LabFiles.
                var parts = q.Value.Split('.');
                for (var k = 1; k < parts.Length; k++)
                {
                    var ns = Resolve(string.Join('.', parts[..k]), rootNamespace);
                    if (types.TryGetValue(ns, out var declared) && declared.Contains(parts[k]))
                    {
                        graph.Add(f.Namespace, ns, new Reference(f.Name, string.Join('.', parts[..(k + 1)])));
                        break;
                    }
                }
            }
            if (f.Namespace != rootNamespace && f.Namespace.StartsWith(rootNamespace + ".", StringComparison.Ordinal) && types.ContainsKey(rootNamespace))
            {
                graph.Add(f.Namespace, rootNamespace, new Reference(f.Name, $"(sees {rootNamespace} without a using)"));
            }
        }
        return graph;
    }

    /// <summary>"Host" or "LabKernel.Host" or "global::LabKernel.Host", read from inside the root namespace.</summary>
    private static string Resolve(string qualifier, string rootNamespace)
    {
        if (qualifier.StartsWith("global::", StringComparison.Ordinal))
        {
            qualifier = qualifier["global::".Length..];
        }
        if (qualifier == rootNamespace || qualifier.StartsWith(rootNamespace + ".", StringComparison.Ordinal))
        {
            return qualifier;
        }
        return rootNamespace + "." + qualifier;
    }

    private void Add(string from, string to, Reference why)
    {
        if (from == to)
        {
            return;
        }
        var deps = _edges[from];
        if (!deps.TryGetValue(to, out var list))
        {
            deps[to] = list = [];
        }
        list.Add(why);
        _edges.TryAdd(to, new Dictionary<string, List<Reference>>(StringComparer.Ordinal));
    }

    /// <summary>
    /// Every strongly connected group of two or more namespaces, each shown as one cycle through it with the
    /// references that make each step (Tarjan's algorithm; the graph is small).
    /// </summary>
    public IReadOnlyList<string> Cycles()
    {
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var groups = new List<List<string>>();
        var next = 0;

        void Visit(string v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in _edges[v].Keys.Order(StringComparer.Ordinal))
            {
                if (!index.ContainsKey(w))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }
            if (low[v] == index[v])
            {
                var group = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    group.Add(w);
                }
                while (w != v);
                if (group.Count > 1)
                {
                    groups.Add(group);
                }
            }
        }

        foreach (var v in _edges.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(v))
            {
                Visit(v);
            }
        }
        return groups.Select(g => DescribeGroup(g.ToHashSet())).ToList();
    }

    private string DescribeGroup(HashSet<string> group)
    {
        var sb = new StringBuilder();
        sb.Append("cycle among ").AppendJoin(", ", group.Order(StringComparer.Ordinal).Select(Short)).AppendLine(":");
        var seen = new HashSet<string>();
        foreach (var start in group.Order(StringComparer.Ordinal))
        {
            var path = ShortestCycle(start, group);
            // The same cycle read from another of its members is shown once.
            var key = string.Join(",", path.Skip(1).Order(StringComparer.Ordinal));
            if (!seen.Add(key))
            {
                continue;
            }
            sb.Append("  ").AppendJoin(" -> ", path.Select(Short)).AppendLine();
            for (var i = 0; i < path.Count - 1; i++)
            {
                var refs = _edges[path[i]][path[i + 1]];
                sb.Append("    ").Append(Short(path[i])).Append(" -> ").Append(Short(path[i + 1])).Append(" because ")
                  .AppendJoin(" | ", refs.Take(3)).AppendLine(refs.Count > 3 ? $" | and {refs.Count - 3} more" : "");
            }
        }
        return sb.ToString();
    }

    /// <summary>The shortest way from <paramref name="start"/> back to itself inside the group (breadth first).</summary>
    private List<string> ShortestCycle(string start, HashSet<string> group)
    {
        var previous = new Dictionary<string, string>();
        var queue = new Queue<string>([start]);
        string? last = null;
        while (queue.Count > 0 && last is null)
        {
            var v = queue.Dequeue();
            foreach (var w in _edges[v].Keys.Where(group.Contains).Order(StringComparer.Ordinal))
            {
                if (w == start)
                {
                    last = v;
                    break;
                }
                if (previous.TryAdd(w, v))
                {
                    queue.Enqueue(w);
                }
            }
        }
        var path = new List<string> { start };
        for (var v = last!; v != start; v = previous[v])
        {
            path.Insert(1, v);
        }
        path.Add(start);
        return path;
    }

    private string Short(string ns) => ns == RootNamespace ? ns : ns[(RootNamespace.Length + 1)..];

    private static bool IsBuildOutput(string relative)
    {
        var first = relative.Replace('\\', '/').Split('/');
        return first.Any(p => p is "bin" or "obj");
    }

    /// <summary>The source with comments and the text of literals blanked out; interpolation holes stay.</summary>
    internal static string CodeOnly(string source)
    {
        var sb = new StringBuilder(source.Length);
        var i = 0;
        CopyCode(source, ref i, sb, closingBraces: 0);
        return sb.ToString();
    }

    /// <summary>Copies code until the end, or (inside an interpolation hole) until the brace that closes it.</summary>
    private static void CopyCode(string s, ref int i, StringBuilder sb, int closingBraces)
    {
        var depth = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c == '/' && At(s, i + 1, '/'))
            {
                while (i < s.Length && s[i] != '\n')
                {
                    i++;
                }
                continue;
            }
            if (c == '/' && At(s, i + 1, '*'))
            {
                var end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? s.Length : end + 2;
                sb.Append(' ');
                continue;
            }
            if (c == '\'')
            {
                i++;
                while (i < s.Length && s[i] != '\'')
                {
                    i += s[i] == '\\' ? 2 : 1;
                }
                i++;
                sb.Append("' '");
                continue;
            }
            if (c is '$' or '@' or '"')
            {
                var start = i;
                var dollars = 0;
                var verbatim = false;
                while (i < s.Length && (s[i] == '$' || s[i] == '@'))
                {
                    if (s[i] == '$')
                    {
                        dollars++;
                    }
                    else
                    {
                        verbatim = true;
                    }
                    i++;
                }
                if (At(s, i, '"'))
                {
                    sb.Append('"');
                    CopyString(s, ref i, sb, dollars, verbatim);
                    sb.Append('"');
                    continue;
                }
                i = start;
                sb.Append(c);
                i++;
                continue;
            }
            if (closingBraces > 0)
            {
                if (c == '{')
                {
                    depth++;
                }
                else if (c == '}')
                {
                    if (depth == 0)
                    {
                        // The hole ends here (raw strings close it with as many braces as they opened it).
                        i += closingBraces;
                        return;
                    }
                    depth--;
                }
            }
            sb.Append(c);
            i++;
        }
    }

    /// <summary>At an opening quote: skips the literal, copying only what its interpolation holes hold.</summary>
    private static void CopyString(string s, ref int i, StringBuilder sb, int dollars, bool verbatim)
    {
        var quotes = 0;
        while (At(s, i + quotes, '"'))
        {
            quotes++;
        }
        if (quotes >= 3)
        {
            // Raw string: ends at as many quotes as it opened with; a hole opens with as many braces as there are $.
            i += quotes;
            var close = new string('"', quotes);
            while (i < s.Length && !s.AsSpan(i).StartsWith(close))
            {
                if (dollars > 0 && s.AsSpan(i).StartsWith(new string('{', dollars)) && !At(s, i + dollars, '{'))
                {
                    i += dollars;
                    sb.Append(' ');
                    CopyCode(s, ref i, sb, closingBraces: 1);
                    sb.Append(' ');
                    continue;
                }
                i++;
            }
            i += quotes;
            return;
        }
        if (quotes == 2 && !verbatim)
        {
            i += 2; // ""
            return;
        }
        i++;
        while (i < s.Length)
        {
            var c = s[i];
            if (verbatim && c == '"' && At(s, i + 1, '"'))
            {
                i += 2;
                continue;
            }
            if (c == '"')
            {
                i++;
                return;
            }
            if (!verbatim && c == '\\')
            {
                i += 2;
                continue;
            }
            if (dollars > 0 && c == '{')
            {
                if (At(s, i + 1, '{'))
                {
                    i += 2;
                    continue;
                }
                i++;
                sb.Append(' ');
                CopyCode(s, ref i, sb, closingBraces: 1);
                sb.Append(' ');
                continue;
            }
            i++;
        }
    }

    private static bool At(string s, int i, char c) => i < s.Length && s[i] == c;

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"^\s*(?:global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?(?:global::)?([\w.]+)\s*(?:<[^;]*>)?\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingDirective();

    [GeneratedRegex(@"\b(?:class|struct|interface|enum|record)\s+(?!class\b|struct\b)(\w+)|\bdelegate\s+[\w<>\[\]?,. ]+?\s+(\w+)\s*[<(]")]
    private static partial Regex TypeDeclaration();

    /// <summary>A whole dotted name, not itself after a dot ("Host.LabFiles.Refuse", "global::LabKernel.Host.LabPaths").</summary>
    [GeneratedRegex(@"(?<![\w.])(?:global::)?\w+(?:\.\w+)+")]
    private static partial Regex DottedName();
}
