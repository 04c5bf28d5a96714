namespace LabKernel.Host;

/// <summary>The machine's own configured Debian mirror, read from its apt sources (never a hard-coded host).</summary>
public static class DebianMirror
{
    /// <summary>
    /// Finds the first <c>deb</c> source for Debian's main archive (not security, not third-party) in
    /// <c>/etc/apt/sources.list</c> and <c>/etc/apt/sources.list.d/*.list|*.sources</c> (one-line and deb822 forms).
    /// <c>LAB_DEBIAN_MIRROR</c> overrides it.
    /// </summary>
    public static string Find(string aptRoot = "/etc/apt")
    {
        var overridden = Environment.GetEnvironmentVariable("LAB_DEBIAN_MIRROR");
        if (!string.IsNullOrEmpty(overridden))
        {
            return overridden;
        }
        var files = new List<string>();
        var main = Path.Combine(aptRoot, "sources.list");
        if (File.Exists(main))
        {
            files.Add(main);
        }
        var d = Path.Combine(aptRoot, "sources.list.d");
        if (Directory.Exists(d))
        {
            files.AddRange(Directory.GetFiles(d).Where(f => f.EndsWith(".list", StringComparison.Ordinal) || f.EndsWith(".sources", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        }
        foreach (var f in files)
        {
            var candidates = f.EndsWith(".sources", StringComparison.Ordinal) ? ParseDeb822(File.ReadAllText(f)) : ParseOneLine(File.ReadAllText(f));
            var hit = candidates.FirstOrDefault(IsDebianMain);
            if (hit is not null)
            {
                return hit.Uri.TrimEnd('/');
            }
        }
        throw new LabException($"no Debian mirror found in {aptRoot}/sources.list or sources.list.d (set LAB_DEBIAN_MIRROR to one)");
    }

    internal sealed record Source(string Uri, IReadOnlyList<string> Suites, IReadOnlyList<string> Components);

    internal static bool IsDebianMain(Source s) =>
        s.Suites.Any(x => !x.Contains("security", StringComparison.Ordinal) && !x.Contains('/'))
        && s.Components.Contains("main")
        && !s.Uri.Contains("security", StringComparison.Ordinal)
        && (s.Uri.Contains("debian", StringComparison.OrdinalIgnoreCase) || s.Suites.Any(x => x is "bookworm" or "stable" or "trixie" or "bullseye"));

    internal static IEnumerable<Source> ParseOneLine(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#')[0].Trim();
            if (!line.StartsWith("deb ", StringComparison.Ordinal))
            {
                continue;
            }
            var rest = line[4..].Trim();
            if (rest.StartsWith('['))
            {
                var close = rest.IndexOf(']', StringComparison.Ordinal);
                rest = close < 0 ? "" : rest[(close + 1)..].Trim();
            }
            var parts = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 3)
            {
                yield return new Source(parts[0], [parts[1]], parts[2..]);
            }
        }
    }

    internal static IEnumerable<Source> ParseDeb822(string text)
    {
        foreach (var stanza in text.Replace("\r", "").Split("\n\n"))
        {
            var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var raw in stanza.Split('\n'))
            {
                if (raw.StartsWith('#') || !raw.Contains(':') || char.IsWhiteSpace(raw.FirstOrDefault()))
                {
                    continue;
                }
                var i = raw.IndexOf(':', StringComparison.Ordinal);
                fields[raw[..i].Trim()] = raw[(i + 1)..].Trim();
            }
            if (!fields.TryGetValue("Types", out var types) || !types.Split(' ').Contains("deb")
                || fields.TryGetValue("Enabled", out var en) && en.Equals("no", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (!fields.TryGetValue("URIs", out var uris) || !fields.TryGetValue("Suites", out var suites))
            {
                continue;
            }
            var comps = fields.TryGetValue("Components", out var c) ? c.Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];
            foreach (var uri in uris.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return new Source(uri, suites.Split(' ', StringSplitOptions.RemoveEmptyEntries), comps);
            }
        }
    }
}
