using System.Globalization;
using LabKernel.Host;
using LabKernel.Processes;

namespace LabKernel.Images;

/// <summary>
/// Typed wrappers over <c>qemu-img</c> for offline image work: create overlays, inspect backing chains and
/// allocation, check, compare, commit, rebase, convert, measure, internal snapshots. An instance is bound to the
/// host whose files it works on: <see cref="Local"/> for this machine, <see cref="On"/> for another (a hypervisor
/// over SSH); every path a method takes is a path on that host, and every run goes through
/// <see cref="ILabHost.RunAsync"/> (argv arrays, time limits, journaled).
/// </summary>
/// <remarks>
/// Readers pass force-share (<c>-U</c>) by default so an image a running QEMU holds can be inspected. Writers never
/// do: when QEMU holds the image's lock they fail, and the failure is raised as <see cref="ImageInUseException"/>.
/// Other failures raise <see cref="QemuImgException"/> with the command line and stderr.
/// </remarks>
public sealed class QemuImg
{
    /// <summary>Program run for every call.</summary>
    public const string Program = "qemu-img";

    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    private QemuImg(ILabHost host)
    {
        Host = host;
    }

    /// <summary>qemu-img on this machine, on its files.</summary>
    public static QemuImg Local { get; } = new(LocalHost.Instance);

    /// <summary>qemu-img on <paramref name="host"/>, on its files (<see cref="Local"/> when it is this machine).</summary>
    public static QemuImg On(ILabHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return ReferenceEquals(host, LocalHost.Instance) ? Local : new QemuImg(host);
    }

    /// <summary>The host qemu-img runs on and whose paths the methods take.</summary>
    public ILabHost Host { get; }

    /// <summary>
    /// Creates an image: <c>qemu-img create -f FORMAT [-b BACKING -F BACKING_FORMAT] [-o OPTIONS] PATH [SIZE]</c>.
    /// With a backing file the size may be null (it is then the backing file's size).
    /// </summary>
    public async Task CreateAsync(string path, string format, long? size = null, CreateOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(format);
        options ??= new CreateOptions();
        if (size is null && options.BackingFile is null)
        {
            throw new LabUsageException($"qemu-img create {path}: give a size or a backing file");
        }
        // qemu-img create truncates an existing file: only a file the lab made itself may be replaced.
        if (await Host.FileExistsAsync(path, cancellationToken).ConfigureAwait(false) && !LabFiles.IsLabMade(path))
        {
            throw new OverlayExistsException(Host.IsLocal ? Path.GetFullPath(path) : path);
        }
        var args = new List<string> { "-f", format };
        if (options.BackingFile is { } backing)
        {
            var backingFormat = options.BackingFormat ?? await ProbeBackingFormatAsync(path, backing, cancellationToken).ConfigureAwait(false);
            args.AddRange(["-b", backing, "-F", backingFormat]);
        }
        var o = new List<KeyValuePair<string, string>>();
        if (options.ClusterSize is { } cs)
        {
            o.Add(new("cluster_size", cs.ToString(CultureInfo.InvariantCulture)));
        }
        if (options.Options is { } extra)
        {
            o.AddRange(extra);
        }
        AddOptions(args, o);
        args.Add(path);
        if (size is { } s)
        {
            args.Add(s.ToString(CultureInfo.InvariantCulture));
        }
        LabFiles.MarkCreated(path);
        await RunAsync("create", args, path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Describes one image: <c>qemu-img info --output=json [-U] [-f FORMAT] PATH</c>.</summary>
    public async Task<ImageInfo> InfoAsync(string path, bool forceShare = true, string? format = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync("info", ["--output=json", .. ShareFlag(forceShare), .. FormatFlag("-f", format), path], path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return Parse(r, "info", ImageInfo.Parse);
    }

    /// <summary>
    /// Reads the whole backing chain from the image headers:
    /// <c>qemu-img info --backing-chain --output=json [-U] [-f FORMAT] PATH</c>. The layer file names are the names
    /// qemu-img resolved, so pass a full path to get full paths throughout.
    /// </summary>
    public async Task<BackingChain> GetBackingChainAsync(string path, bool forceShare = true, string? format = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync("info", ["--backing-chain", "--output=json", .. ShareFlag(forceShare), .. FormatFlag("-f", format), path], path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return Parse(r, "info", BackingChain.Parse);
    }

    /// <summary>
    /// Maps guest ranges to the chain layer that holds them: <c>qemu-img map --output=json [-U] [-f FORMAT] PATH</c>.
    /// </summary>
    public async Task<AllocationMap> MapAsync(string path, bool forceShare = true, string? format = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync("map", ["--output=json", .. ShareFlag(forceShare), .. FormatFlag("-f", format), path], path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return Parse(r, "map", AllocationMap.Parse);
    }

    /// <summary>
    /// Checks image metadata: <c>qemu-img check --output=json [-U] [-f FORMAT] [-r leaks|all] PATH</c>. Leaks and
    /// corruptions are a result (<see cref="CheckResult.IsClean"/> false), not an exception; failing to open the image
    /// or a format without checks (exit 63) raises <see cref="QemuImgException"/>.
    /// </summary>
    public async Task<CheckResult> CheckAsync(string path, CheckOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CheckOptions();
        var args = new List<string> { "--output=json" };
        if (options.Repair == CheckRepair.None)
        {
            args.AddRange(ShareFlag(options.ForceShare));
        }
        else
        {
            args.AddRange(["-r", options.Repair == CheckRepair.Leaks ? "leaks" : "all"]);
        }
        args.AddRange(FormatFlag("-f", options.Format));
        args.Add(path);
        var r = await RunAsync("check", args, path, DefaultTimeout, cancellationToken, check: false).ConfigureAwait(false);
        if (r.ExitCode is >= 0 and <= 3 && r.StandardOutput.TrimStart().StartsWith('{'))
        {
            return Parse(r, "check", json => CheckResult.Parse(json, r.ExitCode, r.StandardError));
        }
        throw Failure("check", r, path, r.ExitCode == 63 ? "the image format does not support checks" : null);
    }

    /// <summary>
    /// Compares guest-visible contents: <c>qemu-img compare [-s] [-U] [-f FMT] [-F FMT] FIRST SECOND</c>.
    /// A difference is a result with the first differing offset; errors (exit 2) raise <see cref="QemuImgException"/>.
    /// </summary>
    public async Task<CompareResult> CompareAsync(string first, string second, CompareOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CompareOptions();
        var args = new List<string>();
        if (options.Strict)
        {
            args.Add("-s");
        }
        args.AddRange(ShareFlag(options.ForceShare));
        args.AddRange(FormatFlag("-f", options.FirstFormat));
        args.AddRange(FormatFlag("-F", options.SecondFormat));
        args.AddRange([first, second]);
        var r = await RunAsync("compare", args, first, DefaultTimeout, cancellationToken, check: false).ConfigureAwait(false);
        if (r.ExitCode is 0 or 1)
        {
            return CompareResult.Parse(r.StandardOutput, r.ExitCode, options.Strict);
        }
        throw Failure("compare", r, first);
    }

    /// <summary>
    /// Commits an overlay's data into its backing file, or with <see cref="CommitOptions.Base"/> into an image further
    /// down (an intermediate commit of every layer between): <c>qemu-img commit [-f FMT] [-b BASE] [-d] PATH</c>.
    /// Images above <paramref name="path"/> still name it as their backing file; rebase them when dropping it.
    /// </summary>
    public async Task CommitAsync(string path, CommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CommitOptions();
        if (options.Base is null)
        {
            // Without -b, qemu-img commit writes the image's backing file, which the caller did not name.
            var backing = (await InfoAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false)).FullBackingFilename;
            if (backing is not null)
            {
                LabFiles.EnsureMayModify(backing, $"qemu-img commit {path} into its backing file {backing}");
            }
        }
        var args = new List<string>();
        args.AddRange(FormatFlag("-f", options.Format));
        if (options.Base is { } b)
        {
            args.AddRange(["-b", b]);
        }
        if (options.KeepContents)
        {
            args.Add("-d");
        }
        args.Add(path);
        await RunAsync("commit", args, path, options.Timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Points an image at a new backing file: <c>qemu-img rebase [-f FMT] [-u] -b BACKING [-F BACKING_FMT] PATH</c>.
    /// A null or empty <paramref name="backingFile"/> removes the backing file (safe mode first copies in all data the
    /// old chain provided). A relative <paramref name="backingFile"/> is stored as written and resolved against the
    /// image's folder.
    /// </summary>
    public async Task RebaseAsync(string path, string? backingFile, RebaseOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RebaseOptions();
        var args = new List<string>();
        args.AddRange(FormatFlag("-f", options.Format));
        if (options.Unsafe)
        {
            args.Add("-u");
        }
        args.AddRange(["-b", backingFile ?? ""]);
        if (!string.IsNullOrEmpty(backingFile))
        {
            var backingFormat = options.BackingFormat ?? await ProbeBackingFormatAsync(path, backingFile, cancellationToken).ConfigureAwait(false);
            args.AddRange(["-F", backingFormat]);
        }
        args.Add(path);
        await RunAsync("rebase", args, path, options.Timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Copies an image (flattening its backing chain) into a new file:
    /// <c>qemu-img convert [-f FMT] [-U] [-c] -O FORMAT [-o OPTIONS] SOURCE TARGET</c>.
    /// </summary>
    public async Task ConvertAsync(string source, string target, string targetFormat, ConvertOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ConvertOptions();
        var args = new List<string>();
        args.AddRange(FormatFlag("-f", options.SourceFormat));
        args.AddRange(ShareFlag(options.ForceShare));
        if (options.Compress)
        {
            args.Add("-c");
        }
        args.AddRange(["-O", targetFormat]);
        AddOptions(args, options.Options ?? new Dictionary<string, string>());
        args.AddRange([source, target]);
        await RunAsync("convert", args, source, options.Timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How big a copy of an image would be: <c>qemu-img measure --output=json -O FORMAT [-f FMT] SOURCE</c>.
    /// (qemu-img measure has no force-share flag, so the source must not be in use.)
    /// </summary>
    public async Task<MeasureResult> MeasureAsync(string source, string targetFormat, string? sourceFormat = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync("measure", ["--output=json", "-O", targetFormat, .. FormatFlag("-f", sourceFormat), source], source, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return Parse(r, "measure", MeasureResult.Parse);
    }

    /// <summary>How big a new empty image would be: <c>qemu-img measure --output=json -O FORMAT --size SIZE</c>.</summary>
    public async Task<MeasureResult> MeasureNewAsync(long size, string targetFormat, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync("measure", ["--output=json", "-O", targetFormat, "--size", size.ToString(CultureInfo.InvariantCulture)], null, DefaultTimeout, cancellationToken).ConfigureAwait(false);
        return Parse(r, "measure", MeasureResult.Parse);
    }

    /// <summary>
    /// Lists the internal snapshots of an offline image (what <c>qemu-img snapshot -l</c> shows), read as JSON from
    /// <c>qemu-img info --output=json [-U] PATH</c>.
    /// </summary>
    public async Task<IReadOnlyList<InternalSnapshot>> ListSnapshotsAsync(string path, bool forceShare = true, CancellationToken cancellationToken = default)
    {
        var info = await InfoAsync(path, forceShare, null, cancellationToken).ConfigureAwait(false);
        return info.Snapshots;
    }

    /// <summary>Takes an internal snapshot of an offline image: <c>qemu-img snapshot -c NAME PATH</c>.</summary>
    public Task CreateSnapshotAsync(string path, string name, CancellationToken cancellationToken = default) =>
        SnapshotAsync("-c", path, name, cancellationToken);

    /// <summary>Reverts an offline image to an internal snapshot: <c>qemu-img snapshot -a NAME PATH</c>.</summary>
    public Task ApplySnapshotAsync(string path, string name, CancellationToken cancellationToken = default) =>
        SnapshotAsync("-a", path, name, cancellationToken);

    /// <summary>Deletes an internal snapshot of an offline image: <c>qemu-img snapshot -d NAME PATH</c>.</summary>
    public Task DeleteSnapshotAsync(string path, string name, CancellationToken cancellationToken = default) =>
        SnapshotAsync("-d", path, name, cancellationToken);

    private async Task SnapshotAsync(string flag, string path, string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await RunAsync("snapshot", [flag, name, path], path, DefaultTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <c>qemu-img SUBCOMMAND ARGS</c>; failures become <see cref="QemuImgException"/> or <see cref="ImageInUseException"/>.</summary>
    private async Task<ProcessResult> RunAsync(string subcommand, IEnumerable<string> args, string? image, TimeSpan? timeout, CancellationToken cancellationToken, bool check = true)
    {
        var r = await Host.RunAsync(Program, [subcommand, .. args], new ProcessOptions { Timeout = timeout, Check = false }, cancellationToken).ConfigureAwait(false);
        if (check && !r.Succeeded)
        {
            throw Failure(subcommand, r, image);
        }
        return r;
    }

    internal static QemuImgException Failure(string subcommand, ProcessResult r, string? image, string? detail = null)
    {
        var inner = new ProcessFailedException(r);
        if (image is not null && ImageInUseException.IsLockFailure(r.StandardError))
        {
            return new ImageInUseException(image, subcommand, r, inner);
        }
        return new QemuImgException(subcommand, r, detail, inner);
    }

    /// <summary>Parses qemu-img's JSON output; output that is not the JSON expected is a <see cref="QemuImgException"/> "unreadable output".</summary>
    internal static T Parse<T>(ProcessResult r, string subcommand, Func<string, T> parse)
    {
        try
        {
            return parse(r.StandardOutput);
        }
        // The parsers are pure: any of these is the output's fault (ArgumentOutOfRange/Overflow: a date or clock beyond
        // DateTimeOffset/TimeSpan, as in a snapshot listing with garbage in it).
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or KeyNotFoundException
            or ArgumentException or OverflowException)
        {
            throw new QemuImgException(subcommand, r, $"unreadable output: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    private async Task<string> ProbeBackingFormatAsync(string imagePath, string backing, CancellationToken cancellationToken)
    {
        if (ImageInfo.ClassifyBackingName(backing) == BackingNameKind.Protocol)
        {
            throw new LabUsageException($"backing file {backing} of {imagePath} is a protocol name: give its format explicitly");
        }
        var resolved = backing.StartsWith('/')
            ? backing
            : Path.Combine(Path.GetDirectoryName(Host.IsLocal ? Path.GetFullPath(imagePath) : imagePath) ?? ".", backing);
        var info = await InfoAsync(resolved, forceShare: true, null, cancellationToken).ConfigureAwait(false);
        return info.Format;
    }

    private static string[] ShareFlag(bool forceShare) => forceShare ? ["-U"] : [];

    private static string[] FormatFlag(string flag, string? format) => string.IsNullOrEmpty(format) ? [] : [flag, format];

    private static void AddOptions(List<string> args, IEnumerable<KeyValuePair<string, string>> options)
    {
        // qemu's option syntax separates with commas; a literal comma in a value is written twice.
        var parts = options.Select(kv => kv.Key + "=" + kv.Value.Replace(",", ",,", StringComparison.Ordinal)).ToList();
        if (parts.Count > 0)
        {
            args.AddRange(["-o", string.Join(',', parts)]);
        }
    }
}
