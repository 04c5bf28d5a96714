using System.Text.RegularExpressions;

namespace LabRunner.Notebooks;

/// <summary>A <c>#r "nuget: Name, Version"</c> reference; a null version means the latest.</summary>
public sealed record PackageReference(string Id, string? Version)
{
    public override string ToString() => Version is null ? Id : $"{Id}, {Version}";
}

/// <summary>
/// The preprocessor lines of notebook cells and scripts that are not plain C#: <c>#r "nuget: ..."</c> (resolved by
/// restore), <c>#i "nuget: SOURCE"</c> (a package source), <c>#load "file.csx"</c>, and Polyglot magic commands
/// (<c>#!csharp</c>, <c>#!time</c>, ...). Lines the compiler must not see are blanked, never removed, so compiler
/// errors keep the cell's line numbers.
/// </summary>
public static partial class Directives
{
    [GeneratedRegex("""^\s*#r\s+"\s*nuget\s*:\s*(?<spec>[^"]*)"\s*$""", RegexOptions.IgnoreCase)]
    private static partial Regex NuGetReference();

    [GeneratedRegex("""^\s*#i\s+"\s*nuget\s*:\s*(?<source>[^"]*)"\s*$""", RegexOptions.IgnoreCase)]
    private static partial Regex NuGetSource();

    [GeneratedRegex("""^\s*#load\s+"(?<path>[^"]+)"\s*$""")]
    private static partial Regex Load();

    [GeneratedRegex("""^\s*#!\S+""")]
    private static partial Regex Magic();

    /// <summary>Parses "Name, Version" (version optional).</summary>
    public static PackageReference ParsePackage(string spec)
    {
        var parts = spec.Split(',', 2, StringSplitOptions.TrimEntries);
        var version = parts.Length > 1 && parts[1].Length > 0 ? parts[1] : null;
        return new PackageReference(parts[0], version);
    }

    public static bool TryParseNuGetReference(string line, out PackageReference package)
    {
        var m = NuGetReference().Match(line);
        package = m.Success ? ParsePackage(m.Groups["spec"].Value) : new PackageReference("", null);
        return m.Success && package.Id.Length > 0;
    }

    /// <summary>
    /// Blanks <c>#i</c> lines and magic commands, returning the code for the compiler and the package sources found.
    /// </summary>
    public static (string Code, List<string> Sources) Preprocess(string code)
    {
        var lines = code.ReplaceLineEndings("\n").Split('\n');
        var sources = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var m = NuGetSource().Match(lines[i]);
            if (m.Success)
            {
                sources.Add(m.Groups["source"].Value.Trim());
                lines[i] = "";
            }
            else if (Magic().IsMatch(lines[i]))
            {
                lines[i] = "";
            }
        }
        return (string.Join('\n', lines), sources);
    }

    /// <summary>
    /// The packages referenced by <paramref name="code"/> and by the files it <c>#load</c>s (recursively,
    /// relative to <paramref name="baseDirectory"/> or to the loading file), and the <c>#i</c> sources of loaded files.
    /// </summary>
    public static (List<PackageReference> Packages, List<(string Source, string Directory)> Sources) Scan(string code, string baseDirectory)
    {
        var packages = new List<PackageReference>();
        var sources = new List<(string, string)>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        void Walk(string text, string dir)
        {
            foreach (var line in text.ReplaceLineEndings("\n").Split('\n'))
            {
                if (TryParseNuGetReference(line, out var p))
                {
                    packages.Add(p);
                    continue;
                }
                var src = NuGetSource().Match(line);
                if (src.Success)
                {
                    sources.Add((src.Groups["source"].Value.Trim(), dir));
                    continue;
                }
                var load = Load().Match(line);
                if (load.Success)
                {
                    var path = Path.GetFullPath(load.Groups["path"].Value, dir);
                    if (File.Exists(path) && visited.Add(path))
                    {
                        Walk(File.ReadAllText(path), Path.GetDirectoryName(path)!);
                    }
                }
            }
        }
        Walk(code, baseDirectory);
        return (packages, sources);
    }
}
