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

/// <summary>POSIX shell quoting, only for showing commands to people (the lab never runs a shell string it built).</summary>
public static class ShellQuote
{
    public static string Quote(string s)
    {
        if (s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)))
        {
            return s;
        }
        return "'" + s.Replace("'", "'\\''") + "'";
    }

    public static string Join(IEnumerable<string> argv) => string.Join(' ', argv.Select(Quote));
}
