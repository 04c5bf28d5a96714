namespace LabRunner.Notebooks;

/// <summary>What <c>lab run</c> was asked to do.</summary>
public sealed record RunOptions
{
    public required string InputPath { get; init; }

    /// <summary>The executed notebook; null: next to the input as NAME.executed.ipynb (.csx: not written).</summary>
    public string? OutputPath { get; init; }

    public IReadOnlyList<(string Name, string Value)> Parameters { get; init; } = [];

    public string? ReportPath { get; init; }

    public bool AllowErrors { get; init; }

    /// <summary>Limit for the whole run, kernel start included.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Limit for each cell.</summary>
    public TimeSpan? CellTimeout { get; init; }

    /// <summary>The kernel's working directory; default: the input's folder.</summary>
    public string? WorkingDirectory { get; init; }

    public IReadOnlyList<string> ScriptArguments { get; init; } = [];
}

/// <summary>How a run ended: the exit code (0 ok, 1 a cell failed, 3 time limit, 130 interrupted; a .csx's own return value) and the files written.</summary>
public sealed record RunOutcome(int ExitCode, string Status, string? OutputPath, string? ReportPath, int CellsRun, string? FailedCellId);

/// <summary>Exit codes of <c>lab run</c>.</summary>
public static class RunExitCodes
{
    public const int Success = 0;
    public const int CellFailed = 1;
    public const int UsageError = 2;
    public const int TimedOut = 3;

    /// <summary>Every cell ran, but a finding was refuted that the notebook did not declare an expected outcome.</summary>
    public const int RefutedFinding = 4;

    /// <summary>Interrupted by Ctrl-C (SIGINT): the kernel and its guests were stopped, no further cell ran.</summary>
    public const int Interrupted = 130;

    /// <summary>Stopped by SIGTERM, as for <see cref="Interrupted"/>.</summary>
    public const int Terminated = 143;
}
