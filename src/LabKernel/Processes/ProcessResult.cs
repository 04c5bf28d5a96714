namespace LabKernel.Processes;

/// <summary>What an external program did: its argv, exit code, captured output and duration.</summary>
public sealed record ProcessResult(
    string FileName,
    IReadOnlyList<string> Arguments,
    int ExitCode,
    string StandardOutput,
    string StandardError,
    TimeSpan Duration)
{
    /// <summary>The command line as a user could paste it into a shell.</summary>
    public string CommandLine => ShellQuote.Join([FileName, .. Arguments]);

    public bool Succeeded => ExitCode == 0;
}

/// <summary>An external program failed. Carries the command line and the tail of its stderr.</summary>
public sealed class ProcessFailedException : LabException
{
    public ProcessFailedException(ProcessResult result)
        : base($"`{result.CommandLine}` exited with {result.ExitCode}: {Tail(result)}")
    {
        Result = result;
    }

    public ProcessResult Result { get; }

    private static string Tail(ProcessResult r)
    {
        var text = string.IsNullOrWhiteSpace(r.StandardError) ? r.StandardOutput : r.StandardError;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no output)" : string.Join(" | ", lines.TakeLast(3));
    }
}

/// <summary>
/// POSIX shell quoting. Processes on this host get argv arrays, but some command lines do reach a shell: SSH's remote
/// command, the guest scripts of <c>DeviceSequenceWriter</c> and <c>FileOpsWorkload</c>, QEMU's <c>exec:</c>
/// migration URIs. Every value interpolated there goes through <see cref="Quote"/>; the journal and error messages
/// show commands with <see cref="Join"/>.
/// </summary>
public static class ShellQuote
{
    /// <summary>
    /// <paramref name="s"/> as one literal word of <c>sh</c>: left bare when it is only letters, digits and
    /// <c>-_./=:,+@%</c>, otherwise in single quotes, each embedded <c>'</c> written <c>'\''</c> (nothing is special
    /// inside single quotes: <c>$(...)</c>, backquotes, <c>;</c>, spaces, newlines stay text).
    /// </summary>
    public static string Quote(string s)
    {
        if (s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)))
        {
            return s;
        }
        return "'" + s.Replace("'", "'\\''") + "'";
    }

    /// <summary>
    /// A command line <c>sh</c> reads back as <paramref name="argv"/>. The program name is quoted when it holds
    /// <c>=</c>: unquoted, <c>A=1 x</c> would set a variable and run <c>x</c>.
    /// </summary>
    public static string Join(IEnumerable<string> argv) =>
        string.Join(' ', argv.Select((a, i) => i == 0 && a.Contains('=', StringComparison.Ordinal) ? "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : Quote(a)));
}
