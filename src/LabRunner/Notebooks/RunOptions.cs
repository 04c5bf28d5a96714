namespace LabRunner.Notebooks;

/// <summary>What <c>lab run</c> was asked to do.</summary>
public sealed record RunOptions
{
    public required string InputPath { get; init; }

    /// <summary>The executed notebook; null: next to the input as NAME.executed.ipynb (.csx: not written).</summary>
    public string? OutputPath { get; init; }

    /// <summary>How the output was named on the command line, for messages: <c>-o</c>, or <c>OUT</c> (the second positional argument).</summary>
    public string OutputOrigin { get; init; } = "-o";

    /// <summary>The parameters, merged from every source in papermill's order (<see cref="ParameterSources"/>).</summary>
    public IReadOnlyList<(string Name, string Value)> Parameters { get; init; } = [];

    /// <summary>Write the output notebook with the parameters injected, and run nothing (papermill's --prepare-only).</summary>
    public bool PrepareOnly { get; init; }

    public string? ReportPath { get; init; }

    public bool AllowErrors { get; init; }

    /// <summary>Limit for the whole run, kernel start included.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Limit for each cell.</summary>
    public TimeSpan? CellTimeout { get; init; }

    /// <summary>The kernel's working directory; default: the input's folder.</summary>
    public string? WorkingDirectory { get; init; }

    public IReadOnlyList<string> ScriptArguments { get; init; } = [];

    /// <summary>Variables set for the kernel process besides the runner's own (e.g. a sweep host's reconnect limit).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// How a run ended: the exit code (0 ok, 1 a cell failed, 3 time limit, 4 a finding refuted that the notebook did not
/// declare expected, 130 interrupted, 143 terminated; a .csx's own return value) and the files written.
/// </summary>
public sealed record RunOutcome(int ExitCode, string Status, string? OutputPath, string? ReportPath, int CellsRun, string? FailedCellId);

/// <summary>Exit codes of <c>lab run</c> (docs/runner.md lists them with what each means).</summary>
public static class RunExitCodes
{
    /// <summary>Every cell succeeded (and <c>--prepare-only</c> wrote its notebook); a .csx exits with its own <c>return N;</c>.</summary>
    public const int Success = 0;

    /// <summary>A cell failed: a compile error, an exception, or the kernel died.</summary>
    public const int CellFailed = 1;

    /// <summary>A usage or input error: unreadable file, invalid notebook, unknown parameter or option (one line).</summary>
    public const int UsageError = 2;

    /// <summary><c>--timeout</c> (the whole run) or <c>--cell-timeout</c> (one cell) was reached.</summary>
    public const int TimedOut = 3;

    /// <summary>Every cell ran, but a finding was refuted that the notebook did not declare an expected outcome.</summary>
    public const int RefutedFinding = 4;

    /// <summary>Interrupted by Ctrl-C (SIGINT): the kernel and its guests were stopped, no further cell ran.</summary>
    public const int Interrupted = 130;

    /// <summary>Stopped by SIGTERM, as for <see cref="Interrupted"/>.</summary>
    public const int Terminated = 143;
}
