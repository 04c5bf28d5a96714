using System.Text;

namespace LabKernel.GuestAgent;

/// <summary>The agent answered a command with an error.</summary>
public sealed class GuestAgentErrorException : LabException
{
    public GuestAgentErrorException(string command, string errorClass, string description)
        : base($"guest agent {command} failed: {description.ReplaceLineEndings(" ")} ({errorClass.ReplaceLineEndings(" ")})")
    {
        Command = command;
        ErrorClass = errorClass;
        Description = description;
    }

    public string Command { get; }
    public string ErrorClass { get; }
    public string Description { get; }
}

/// <summary>What a command run in the guest did (<c>guest-exec</c> and <c>guest-exec-status</c>, or SSH).</summary>
public sealed record GuestExecResult(
    IReadOnlyList<string> Command,
    int ExitCode,
    byte[] StandardOutputBytes,
    byte[] StandardErrorBytes,
    TimeSpan Duration,
    int? Signal = null,
    bool OutputTruncated = false)
{
    public string StandardOutput => Encoding.UTF8.GetString(StandardOutputBytes);
    public string StandardError => Encoding.UTF8.GetString(StandardErrorBytes);
    public bool Succeeded => ExitCode == 0 && Signal is null;

    /// <summary>Throws <see cref="GuestCommandFailedException"/> unless the command exited with 0.</summary>
    public GuestExecResult EnsureSuccess() => Succeeded ? this : throw new GuestCommandFailedException(this);
}

/// <summary>A command in the guest exited with a non-zero code or was killed by a signal.</summary>
public sealed class GuestCommandFailedException : LabException
{
    public GuestCommandFailedException(GuestExecResult result)
        : base($"guest command `{Processes.ShellQuote.Join(result.Command)}` " +
               (result.Signal is { } s ? $"was killed by signal {s}" : $"exited with {result.ExitCode}") +
               (string.IsNullOrWhiteSpace(result.StandardError) ? "" : $": {result.StandardError.Trim().Split('\n')[^1]}"))
    {
        Result = result;
    }

    public GuestExecResult Result { get; }
}

/// <summary>State of guest filesystems as <c>guest-fsfreeze-status</c> reports it.</summary>
public enum FsFreezeStatus
{
    Thawed,
    Frozen,
}

/// <summary>Facts from <c>guest-info</c> and <c>guest-get-osinfo</c>.</summary>
public sealed record GuestAgentInfo(string Version, IReadOnlyList<string> EnabledCommands);

/// <summary>Options for <see cref="IGuestShell.ExecAsync"/>.</summary>
public sealed record GuestExecOptions
{
    /// <summary>Time limit for the command; when it passes, the error names the command.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Bytes given to the command's stdin.</summary>
    public byte[]? Input { get; init; }

    /// <summary>Environment variables (NAME=value) for the command.</summary>
    public IReadOnlyList<string>? Environment { get; init; }

    /// <summary>Throw <see cref="GuestCommandFailedException"/> on a non-zero exit.</summary>
    public bool Check { get; init; }
}

/// <summary>A way to run commands in a guest: the guest agent, or SSH.</summary>
public interface IGuestShell
{
    /// <summary>Runs <paramref name="argv"/> (no shell unless argv names one) and returns its exit code and output.</summary>
    Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default);
}

/// <summary>Conveniences over <see cref="IGuestShell"/>.</summary>
public static class GuestShellExtensions
{
    /// <summary>Runs a shell command line with <c>/bin/sh -c</c> (only when the caller asks for a shell).</summary>
    public static Task<GuestExecResult> ShellAsync(this IGuestShell shell, string script, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
        shell.ExecAsync(["/bin/sh", "-c", script], options, cancellationToken);

    /// <summary>Runs a command and returns its stdout; throws when it fails.</summary>
    public static async Task<string> OutputAsync(this IGuestShell shell, IReadOnlyList<string> argv, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var r = await shell.ExecAsync(argv, new GuestExecOptions { Timeout = timeout ?? TimeSpan.FromMinutes(5), Check = true }, cancellationToken).ConfigureAwait(false);
        return r.StandardOutput;
    }
}
