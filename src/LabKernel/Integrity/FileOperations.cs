using LabKernel.Processes;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LabKernel.GuestAgent;

namespace LabKernel.Integrity;

/// <summary>One file operation of the workload.</summary>
public enum FileOpKind
{
    Mkdir,
    Touch,
    WriteRandom,
    Rmdir,
    Remove,
}

/// <summary>An operation done in the guest and, for written files, the SHA-256 the guest computed afterwards.</summary>
public sealed record FileOp(int Index, FileOpKind Kind, string Path, int SizeKiB = 0, string? Sha256 = null);

/// <summary>What a verifier found for one path of the manifest.</summary>
public sealed record FileOpFinding(string Path, string Expected, string Found, bool Ok);

/// <summary>The outcome of verifying a manifest against a filesystem view.</summary>
public sealed record FileOpsVerification(IReadOnlyList<FileOpFinding> Findings)
{
    public bool AllOk => Findings.All(f => f.Ok);
    public int Checked => Findings.Count;
    public int Failed => Findings.Count(f => !f.Ok);
    public string Summary => AllOk ? $"all {Checked} paths as expected" : $"{Failed} of {Checked} paths differ; first: {Findings.First(f => !f.Ok).Path} expected {Findings.First(f => !f.Ok).Expected}, found {Findings.First(f => !f.Ok).Found}";
}

/// <summary>
/// The file workload of 001_e76e9be8cf0e6fec.txt (touch, mkdir, rmdir, dd during a mirror), made checkable: a
/// seeded list of operations run in the guest, a manifest of the final state with checksums, and a verifier
/// that checks any view of the filesystem (a booted copy, or an offline reader of a layer) against it.
/// </summary>
public sealed class FileOpsWorkload
{
    private FileOpsWorkload(string root, IReadOnlyList<FileOp> ops)
    {
        Root = root;
        Operations = ops;
    }

    /// <summary>The guest folder the workload works in.</summary>
    public string Root { get; }

    /// <summary>The operations as done, with checksums of written files.</summary>
    public IReadOnlyList<FileOp> Operations { get; }

    /// <summary>A deterministic plan of <paramref name="count"/> operations (same seed, same plan).</summary>
    public static IReadOnlyList<FileOp> Plan(string root, int count, int seed = 1, int maxFileKiB = 512)
    {
        var rng = new Random(seed);
        var ops = new List<FileOp>();
        var dirs = new List<string>();
        var files = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var roll = rng.Next(100);
            FileOp op;
            if (roll < 20 || dirs.Count == 0)
            {
                var d = $"{root}/dir{i:D4}";
                dirs.Add(d);
                op = new FileOp(i, FileOpKind.Mkdir, d);
            }
            else if (roll < 40)
            {
                var f = $"{dirs[rng.Next(dirs.Count)]}/empty{i:D4}";
                files.Add(f);
                op = new FileOp(i, FileOpKind.Touch, f);
            }
            else if (roll < 80)
            {
                var f = $"{dirs[rng.Next(dirs.Count)]}/data{i:D4}.bin";
                files.Add(f);
                op = new FileOp(i, FileOpKind.WriteRandom, f, 1 + rng.Next(maxFileKiB));
            }
            else if (roll < 90 && files.Count > 0)
            {
                var f = files[rng.Next(files.Count)];
                files.Remove(f);
                op = new FileOp(i, FileOpKind.Remove, f);
            }
            else
            {
                // rmdir only an empty directory made for the purpose, as the document's rmdir did.
                var d = $"{root}/gone{i:D4}";
                ops.Add(new FileOp(i, FileOpKind.Mkdir, d));
                op = new FileOp(i, FileOpKind.Rmdir, d);
            }
            ops.Add(op);
        }
        return ops;
    }

    /// <summary>Runs the plan in the guest (one shell script through the agent), then records checksums.</summary>
    public static async Task<FileOpsWorkload> RunAsync(IGuestShell guest, string root, int count, int seed = 1, CancellationToken cancellationToken = default)
    {
        var plan = Plan(root, count, seed);
        var script = new StringBuilder("set -e\nrm -rf \"$1\"\nmkdir -p \"$1\"\n");
        foreach (var op in plan)
        {
            script.Append(op.Kind switch
            {
                FileOpKind.Mkdir => $"mkdir {ShellQuote.Quote(op.Path)}\n",
                FileOpKind.Touch => $"touch {ShellQuote.Quote(op.Path)}\n",
                FileOpKind.WriteRandom => $"dd if=/dev/urandom of={ShellQuote.Quote(op.Path)} bs=1024 count={op.SizeKiB.ToString(CultureInfo.InvariantCulture)} status=none\n",
                FileOpKind.Rmdir => $"rmdir {ShellQuote.Quote(op.Path)}\n",
                _ => $"rm {ShellQuote.Quote(op.Path)}\n",
            });
        }
        script.Append("sync\n");
        await guest.ExecAsync(["/bin/sh", "-c", script.ToString(), "fileops", root], new GuestExecOptions { Check = true, Timeout = TimeSpan.FromMinutes(30) }, cancellationToken).ConfigureAwait(false);

        var written = FinalFiles(plan).Where(p => plan.Last(o => o.Path == p).Kind == FileOpKind.WriteRandom).ToList();
        var sums = new Dictionary<string, string>(StringComparer.Ordinal);
        if (written.Count > 0)
        {
            var r = await guest.ExecAsync(["sha256sum", .. written], new GuestExecOptions { Check = true, Timeout = TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
            foreach (var line in r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var (hash, path) = ParseSumLine(line);
                sums[path] = hash;
            }
        }
        var done = plan.Select(o => o.Kind == FileOpKind.WriteRandom && sums.TryGetValue(o.Path, out var h) && plan.Last(x => x.Path == o.Path) == o ? o with { Sha256 = h } : o).ToList();
        return new FileOpsWorkload(root, done);
    }

    /// <summary>
    /// One line of <c>sha256sum</c>: <c>HASH  PATH</c>. GNU coreutils escapes a name holding a backslash, newline or
    /// carriage return (<c>\\</c>, <c>\n</c>, <c>\r</c>) and then starts the line with a backslash.
    /// </summary>
    internal static (string Hash, string Path) ParseSumLine(string line)
    {
        var parts = line.Split("  ", 2);
        if (parts.Length < 2)
        {
            throw new LabException($"sha256sum printed a line without a file name: {line}");
        }
        if (!parts[0].StartsWith('\\'))
        {
            return (parts[0], parts[1]);
        }
        var name = new StringBuilder(parts[1].Length);
        for (var i = 0; i < parts[1].Length; i++)
        {
            var c = parts[1][i];
            if (c == '\\' && i + 1 < parts[1].Length)
            {
                i++;
                name.Append(parts[1][i] switch { 'n' => '\n', 'r' => '\r', var other => other });
                continue;
            }
            name.Append(c);
        }
        return (parts[0][1..], name.ToString());
    }

    /// <summary>The paths that must exist at the end (files and directories), and those that must not.</summary>
    public (IReadOnlyList<string> Present, IReadOnlyList<string> Absent) ExpectedState()
    {
        var present = FinalFiles(Operations).Concat(FinalDirs(Operations)).ToList();
        var absent = Operations.Select(o => o.Path).Distinct().Except(present).ToList();
        return (present, absent);
    }

    /// <summary>Checks a view of the guest filesystem against the manifest: every present path with its checksum, every removed path gone.</summary>
    public async Task<FileOpsVerification> VerifyAsync(IFileView view, CancellationToken cancellationToken = default)
    {
        var findings = new List<FileOpFinding>();
        var (present, absent) = ExpectedState();
        foreach (var path in present)
        {
            var exists = await view.ExistsAsync(path, cancellationToken).ConfigureAwait(false);
            var last = Operations.Last(o => o.Path == path);
            if (!exists)
            {
                findings.Add(new FileOpFinding(path, "present", "missing", false));
            }
            else if (last.Sha256 is { } expected)
            {
                var found = Convert.ToHexStringLower(SHA256.HashData(await view.ReadFileAsync(path, cancellationToken).ConfigureAwait(false)));
                findings.Add(new FileOpFinding(path, $"sha256 {expected[..12]}", $"sha256 {found[..12]}", found == expected));
            }
            else
            {
                findings.Add(new FileOpFinding(path, "present", "present", true));
            }
        }
        foreach (var path in absent)
        {
            var exists = await view.ExistsAsync(path, cancellationToken).ConfigureAwait(false);
            findings.Add(new FileOpFinding(path, "absent", exists ? "present" : "absent", !exists));
        }
        return new FileOpsVerification(findings);
    }

    /// <summary>Checks one view against several manifests (workloads run one after the other): all their findings together.</summary>
    public static async Task<FileOpsVerification> VerifyAllAsync(IFileView view, IEnumerable<FileOpsWorkload> workloads, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workloads);
        var all = new List<FileOpFinding>();
        foreach (var w in workloads)
        {
            all.AddRange((await w.VerifyAsync(view, cancellationToken).ConfigureAwait(false)).Findings);
        }
        return new FileOpsVerification(all);
    }

    private static IEnumerable<string> FinalFiles(IReadOnlyList<FileOp> ops) =>
        ops.Where(o => o.Kind is FileOpKind.Touch or FileOpKind.WriteRandom).Select(o => o.Path).Distinct()
           .Where(p => ops.Last(o => o.Path == p).Kind != FileOpKind.Remove);

    private static IEnumerable<string> FinalDirs(IReadOnlyList<FileOp> ops) =>
        ops.Where(o => o.Kind == FileOpKind.Mkdir).Select(o => o.Path).Distinct()
           .Where(p => ops.Last(o => o.Path == p).Kind != FileOpKind.Rmdir);
}
