using System.Globalization;
using LabKernel.Processes;

namespace LabKernel.Images;

/// <summary>The outcome of reading a range back and comparing it with a pattern (<c>qemu-io -c 'read -P ...'</c>).</summary>
/// <param name="Matches">True when every byte of the range equals the pattern.</param>
/// <param name="Message">qemu-io's verdict, e.g. <c>Pattern verification failed at offset 0, 65536 bytes</c>.</param>
public sealed record PatternCheck(bool Matches, string Message);

/// <summary>
/// A thin wrapper over <c>qemu-io</c>, the QEMU block-layer test tool, for writing known patterns into images and
/// reading them back, as qemu-iotests do. Guest offsets are bytes; the image is opened through its whole chain.
/// </summary>
public static class QemuIo
{
    /// <summary>Program run for every call.</summary>
    public const string Program = "qemu-io";

    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Runs qemu-io commands against one image: <c>qemu-io -f FORMAT [-r] [-U] -c CMD ... PATH</c>.
    /// Force-share requires read-only, so <paramref name="forceShare"/> implies <paramref name="readOnly"/>.
    /// A non-zero exit raises <see cref="QemuImgException"/> (subcommand <c>qemu-io</c>).
    /// </summary>
    public static async Task<ProcessResult> RunAsync(string path, IEnumerable<string> commands, string format = "qcow2", bool readOnly = false, bool forceShare = false, CancellationToken cancellationToken = default)
    {
        var r = await RunUncheckedAsync(path, commands, format, readOnly, forceShare, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            throw QemuImg.Failure(Program, r, path);
        }
        // qemu-io reports some command errors ("write failed: ...") on stdout/stderr but may still exit 0.
        if (FailureLine(r) is { } line)
        {
            throw new QemuImgException(Program, r, line, new ProcessFailedException(r));
        }
        return r;
    }

    /// <summary>Fills a range with one byte value: <c>qemu-io -f FORMAT -c 'write -P PATTERN OFFSET LENGTH' PATH</c>.</summary>
    public static Task WritePatternAsync(string path, long offset, long length, byte pattern, string format = "qcow2", CancellationToken cancellationToken = default) =>
        RunAsync(path, [$"write -P 0x{pattern:x2} {N(offset)} {N(length)}"], format, cancellationToken: cancellationToken);

    /// <summary>Writes zeroes efficiently (zero clusters): <c>qemu-io -f FORMAT -c 'write -z OFFSET LENGTH' PATH</c>.</summary>
    public static Task WriteZeroesAsync(string path, long offset, long length, string format = "qcow2", CancellationToken cancellationToken = default) =>
        RunAsync(path, [$"write -z {N(offset)} {N(length)}"], format, cancellationToken: cancellationToken);

    /// <summary>Discards a range: <c>qemu-io -f FORMAT -c 'discard OFFSET LENGTH' PATH</c>.</summary>
    public static Task DiscardAsync(string path, long offset, long length, string format = "qcow2", CancellationToken cancellationToken = default) =>
        RunAsync(path, [$"discard {N(offset)} {N(length)}"], format, cancellationToken: cancellationToken);

    /// <summary>
    /// Reads a range and checks every byte equals <paramref name="pattern"/>:
    /// <c>qemu-io -f FORMAT -r [-U] -c 'read -P PATTERN OFFSET LENGTH' PATH</c>. A mismatch is a result, not an
    /// exception; failing to open or read the image raises <see cref="QemuImgException"/>.
    /// </summary>
    public static async Task<PatternCheck> VerifyPatternAsync(string path, long offset, long length, byte pattern, string format = "qcow2", bool forceShare = true, CancellationToken cancellationToken = default)
    {
        var r = await RunUncheckedAsync(path, [$"read -P 0x{pattern:x2} {N(offset)} {N(length)}"], format, true, forceShare, cancellationToken).ConfigureAwait(false);
        var all = r.StandardOutput + "\n" + r.StandardError;
        var mismatch = all.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Pattern verification failed", StringComparison.Ordinal));
        if (mismatch is not null)
        {
            return new PatternCheck(false, $"{path} [{N(offset)}, +{N(length)}) is not 0x{pattern:x2}: {mismatch}");
        }
        if (!r.Succeeded || FailureLine(r) is not null)
        {
            throw QemuImg.Failure(Program, r, path, FailureLine(r));
        }
        return new PatternCheck(true, $"{path} [{N(offset)}, +{N(length)}) reads 0x{pattern:x2}");
    }

    internal static Task<ProcessResult> RunUncheckedAsync(string path, IEnumerable<string> commands, string format, bool readOnly, bool forceShare, CancellationToken cancellationToken, Host.ILabHost? host = null)
    {
        var args = new List<string> { "-f", format };
        if (readOnly || forceShare)
        {
            args.Add("-r");
        }
        if (forceShare)
        {
            args.Add("-U");
        }
        foreach (var c in commands)
        {
            args.AddRange(["-c", c]);
        }
        args.Add(path);
        return (host ?? Host.LocalHost.Instance).RunAsync(Program, args, new ProcessOptions { Timeout = DefaultTimeout, Check = false }, cancellationToken);
    }

    private static string? FailureLine(ProcessResult r) =>
        (r.StandardOutput + "\n" + r.StandardError).Split('\n').Select(l => l.Trim())
            .FirstOrDefault(l => l.Contains(" failed: ", StringComparison.Ordinal) || l.StartsWith("command \"", StringComparison.Ordinal));

    private static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
}
