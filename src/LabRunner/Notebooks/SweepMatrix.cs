using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel;
using LabKernel.Libvirt;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LabRunner.Notebooks;

/// <summary>One parameter of a sweep and the values it takes, each as text, as <c>-p NAME VALUE</c> would give it.</summary>
internal sealed record SweepAxis(string Name, IReadOnlyList<string> Values);

/// <summary>One combination of a sweep: its parameters in the matrix's order and the folder name they give.</summary>
internal sealed record SweepCombination(int Index, IReadOnlyList<(string Name, string Value)> Parameters)
{
    /// <summary>
    /// The run's folder name, the same for the same parameters in every sweep: the values readable
    /// (<c>Count=10,Refute=false</c>, characters unsafe in a file name replaced, cut at 80) and 8 hex digits of the
    /// SHA-256 of the exact names and values, so two combinations never share a folder.
    /// </summary>
    public string Id
    {
        get
        {
            var exact = string.Join("\n", Parameters.Select(p => p.Name + "\0" + p.Value));
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(exact)))[..8];
            var readable = new StringBuilder();
            foreach (var ch in string.Join(",", Parameters.Select(p => $"{p.Name}={p.Value}")))
            {
                readable.Append(char.IsAsciiLetterOrDigit(ch) || ch is '=' or ',' or '.' or '-' or '_' or '+' ? ch : '_');
            }
            var text = readable.Length > 80 ? readable.ToString(0, 80) : readable.ToString();
            return text.Length == 0 ? hash : $"{text}-{hash}";
        }
    }
}

/// <summary>A libvirt connection runs are sent to, and how many runs it takes at once.</summary>
internal sealed record SweepHost(string Uri, int Jobs)
{
    /// <summary>The researcher's domain on that host (<c>-p Domain</c>); null for the embedded guest as a lab-made domain (this machine only).</summary>
    public string? Domain { get; init; }

    /// <summary>Where on that host the runs make their images (<c>-p HostFolder</c>); null for the default.</summary>
    public string? HostFolder { get; init; }

    /// <summary>
    /// Whole seconds a run there waits for the host's libvirtd to come back before the run fails as the host's failure
    /// (and goes to another host); null: the lab's standard limit (<c>LibvirtConnection.StandardReconnectLimit</c>).
    /// </summary>
    public int? ReconnectSeconds { get; init; }
}

/// <summary>
/// The matrix file of <c>lab sweep</c>: a YAML (or JSON, which YAML reads) mapping of parameter names to lists of
/// values, read with YamlDotNet as <c>-f FILE</c> is (a scalar's text, a sequence or mapping as JSON), and its
/// combinations: the cartesian product in a stable order (the first name varies slowest, values in their order).
/// Also the <c>--hosts</c> file: a list of <c>{uri, jobs}</c>.
/// </summary>
internal static class SweepMatrix
{
    public static IReadOnlyList<SweepAxis> Read(string path)
    {
        var root = LoadOne(path, "--matrix");
        if (root is not YamlMappingNode mapping || mapping.Children.Count == 0)
        {
            throw new LabUsageException($"--matrix {path}: a mapping of NAME: [VALUES] expected");
        }
        var axes = new List<SweepAxis>();
        foreach (var (key, value) in mapping.Children)
        {
            if (key is not YamlScalarNode { Value: { Length: > 0 } name })
            {
                throw new LabUsageException($"--matrix {path}: a parameter name must be a plain word");
            }
            // A single value stands for a list of one, as in a CI matrix.
            var values = value is YamlSequenceNode seq
                ? seq.Children.Select(v => ParameterSources.Text(v, $"--matrix {path}")).ToList()
                : [ParameterSources.Text(value, $"--matrix {path}")];
            if (values.Count == 0)
            {
                throw new LabUsageException($"--matrix {path}: {name} has no values (an empty list gives no combination)");
            }
            axes.Add(new SweepAxis(name, values));
        }
        return axes;
    }

    /// <summary>Every combination of the axes' values, the last axis varying fastest.</summary>
    public static IReadOnlyList<SweepCombination> Combinations(IReadOnlyList<SweepAxis> axes)
    {
        IEnumerable<IReadOnlyList<(string, string)>> product = [[]];
        foreach (var axis in axes)
        {
            var done = product.ToList();
            product = done.SelectMany(prefix => axis.Values.Select(v => (IReadOnlyList<(string, string)>)[.. prefix, (axis.Name, v)]));
        }
        return product.Select((p, i) => new SweepCombination(i, p)).ToList();
    }

    /// <summary>
    /// The hosts file: a list of <c>{uri, jobs, domain, hostFolder, reconnect}</c> (jobs 1 when absent; reconnect in
    /// whole seconds, the lab's standard 60 when absent). Without <c>domain</c> each run makes its own domain there
    /// (on another host from a copy of the guest image the lab keeps under <c>hostFolder</c>). Each URI once; a URI to
    /// another host without SSH to its files is refused in one line.
    /// </summary>
    public static IReadOnlyList<SweepHost> ReadHosts(string path)
    {
        if (LoadOne(path, "--hosts") is not YamlSequenceNode list || list.Children.Count == 0)
        {
            throw new LabUsageException($"--hosts {path}: a list of {{uri, jobs}} expected");
        }
        var hosts = new List<SweepHost>();
        foreach (var item in list.Children)
        {
            if (item is not YamlMappingNode entry)
            {
                throw new LabUsageException($"--hosts {path}: each host is a mapping {{uri: URI, jobs: N}}");
            }
            string? uri = null;
            string? domain = null;
            string? hostFolder = null;
            int? reconnect = null;
            var jobs = 1;
            foreach (var (key, value) in entry.Children)
            {
                var text = (value as YamlScalarNode)?.Value;
                switch ((key as YamlScalarNode)?.Value)
                {
                    case "uri":
                        uri = text;
                        break;
                    case "jobs" when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1:
                        jobs = n;
                        break;
                    case "jobs":
                        throw new LabUsageException($"--hosts {path}: jobs '{text}': expected a whole number of at least 1");
                    case "domain":
                        domain = string.IsNullOrWhiteSpace(text) ? null : text.Trim();
                        break;
                    case "hostFolder":
                        hostFolder = string.IsNullOrWhiteSpace(text) ? null : text.Trim();
                        break;
                    case "reconnect" when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds >= 1:
                        reconnect = seconds;
                        break;
                    case "reconnect":
                        throw new LabUsageException($"--hosts {path}: reconnect '{text}': expected whole seconds, at least 1");
                    case var other:
                        throw new LabUsageException($"--hosts {path}: unknown key '{other}' (a host has uri, jobs, domain, hostFolder and reconnect)");
                }
            }
            if (string.IsNullOrWhiteSpace(uri))
            {
                throw new LabUsageException($"--hosts {path}: a host without a uri");
            }
            if (!LabHosts.FilesOverSsh(uri) && !LibvirtConnection.IsThisHost(uri))
            {
                throw new LabUsageException($"--hosts {path}: {uri} is another host without SSH: the lab works on its image files over SSH (qemu+ssh://USER@HOST/system?keyfile=KEY&known_hosts=FILE, or {LabHosts.SshParameter}=USER@HOST beside another transport)");
            }
            if (hosts.Any(h => h.Uri == uri))
            {
                throw new LabUsageException($"--hosts {path}: {uri} is listed twice (give it more jobs instead)");
            }
            hosts.Add(new SweepHost(uri, jobs) { Domain = domain, HostFolder = hostFolder, ReconnectSeconds = reconnect });
        }
        return hosts;
    }

    private static YamlNode? LoadOne(string path, string option)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LabUsageException($"{option} {path}: {(e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : NotebookReader.OneLine(e.Message))}");
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new LabUsageException($"{option} {path}: not YAML or JSON: {NotebookReader.OneLine(e.Message)} (line {e.Start.Line}, column {e.Start.Column})");
        }
        return stream.Documents.Count == 1 ? stream.Documents[0].RootNode : null;
    }

    /// <summary>The parameters as the results record holds them: name to the text given.</summary>
    public static JsonObject ToJson(IEnumerable<(string Name, string Value)> parameters)
    {
        var o = new JsonObject();
        foreach (var (name, value) in parameters)
        {
            o[name] = value;
        }
        return o;
    }
}
