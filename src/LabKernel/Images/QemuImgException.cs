using LabKernel.Processes;

namespace LabKernel.Images;

/// <summary>
/// A qemu-img (or qemu-io) run failed. Carries the subcommand, the command line and stderr; the
/// <see cref="Exception.InnerException"/> is the <see cref="ProcessFailedException"/> from the process runner.
/// </summary>
public class QemuImgException : LabException
{
    public QemuImgException(string subcommand, ProcessResult result, string? detail = null, Exception? inner = null)
        : base(BuildMessage(subcommand, result, detail), inner)
    {
        Subcommand = subcommand;
        CommandLine = result.CommandLine;
        StandardError = result.StandardError;
        ExitCode = result.ExitCode;
    }

    protected QemuImgException(string subcommand, string message, ProcessResult result, Exception? inner)
        : base(message, inner)
    {
        Subcommand = subcommand;
        CommandLine = result.CommandLine;
        StandardError = result.StandardError;
        ExitCode = result.ExitCode;
    }

    /// <summary>The qemu-img subcommand (<c>info</c>, <c>commit</c>, ...) or <c>qemu-io</c>.</summary>
    public string Subcommand { get; }

    /// <summary>The command line as a user could paste it into a shell.</summary>
    public string CommandLine { get; }

    public string StandardError { get; }

    public int ExitCode { get; }

    internal static string Describe(string subcommand) =>
        subcommand.StartsWith("qemu-", StringComparison.Ordinal) ? subcommand : "qemu-img " + subcommand;

    private static string BuildMessage(string subcommand, ProcessResult result, string? detail)
    {
        var err = result.StandardError.Trim();
        if (err.Length == 0)
        {
            err = result.StandardOutput.Trim();
        }
        if (err.Length > 600)
        {
            // qemu nests its errors ("Could not open X: Could not open Y: reason"): the reason is at the end.
            err = err[..200] + " … " + err[^400..];
        }
        var what = detail ?? $"exited with {result.ExitCode}";
        return $"{Describe(subcommand)} failed ({what}): `{result.CommandLine}`: {(err.Length == 0 ? "(no output)" : err.Replace('\n', ' '))}";
    }
}

/// <summary>
/// An image is held open for writing by another process (normally a running QEMU), so the lab refuses to write
/// to it. Raised by <see cref="ImageLock.EnsureNotInUseAsync"/> and by every qemu-img writer that hits QEMU's
/// image locking ("Failed to get shared \"write\" lock", "Failed to get \"write\" lock").
/// </summary>
public sealed class ImageInUseException : QemuImgException
{
    public ImageInUseException(string imagePath, string subcommand, ProcessResult result, Exception? inner = null)
        : base(subcommand,
            $"image {imagePath} is in use by a running QEMU ({Describe(subcommand)} could not take its lock); " +
            "stop the guest, or change the image through QMP (block-commit, block-stream, blockdev-snapshot) instead of qemu-img. " +
            $"Command: `{result.CommandLine}`: {result.StandardError.Trim().Replace('\n', ' ')}",
            result, inner)
    {
        ImagePath = imagePath;
    }

    public string ImagePath { get; }

    /// <summary>True when qemu-img's stderr says another process holds the image's lock.</summary>
    internal static bool IsLockFailure(string standardError) =>
        standardError.Contains("Failed to get shared \"write\" lock", StringComparison.Ordinal)
        || standardError.Contains("Failed to get \"write\" lock", StringComparison.Ordinal)
        || standardError.Contains("Failed to get \"consistent read\" lock", StringComparison.Ordinal)
        || standardError.Contains("Failed to get shared \"consistent read\" lock", StringComparison.Ordinal);
}
