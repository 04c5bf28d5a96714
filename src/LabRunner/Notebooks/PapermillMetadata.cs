using System.Globalization;
using System.Text.Json.Nodes;

namespace LabRunner.Notebooks;

/// <summary>
/// The run and cell metadata papermill and nbclient write, so tools that read a papermill output (scrapbook, CI
/// dashboards, Jupyter's timing extensions) read a <c>lab run</c> output too, beside the lab's own
/// <c>metadata.lab</c>:
/// <list type="bullet">
/// <item>notebook <c>metadata.papermill</c>: <c>default_parameters</c>, <c>parameters</c>, <c>environment_variables</c>,
/// <c>version</c> (the lab's), <c>input_path</c>, <c>output_path</c>, <c>start_time</c>, <c>end_time</c>,
/// <c>duration</c> (seconds), <c>exception</c> (null, or true once a cell failed), as papermill's execute and engine
/// modules set them;</item>
/// <item>every cell's <c>metadata.papermill</c>: <c>exception</c>, <c>start_time</c>, <c>end_time</c>,
/// <c>duration</c>, <c>status</c> (pending, completed, failed);</item>
/// <item>a code cell that ran: <c>metadata.execution</c> with <c>iopub.status.busy</c>, <c>iopub.execute_input</c>,
/// <c>shell.execute_reply</c> and <c>iopub.status.idle</c>, as nbclient records the kernel's messages.</item>
/// </list>
/// Times are ISO 8601 in UTC: papermill's as Python's <c>isoformat()</c> writes them (<c>+00:00</c>), nbclient's with
/// <c>Z</c>, both to the microsecond.
/// </summary>
internal static class PapermillMetadata
{
    public const string Pending = "pending";
    public const string Completed = "completed";
    public const string Failed = "failed";

    /// <summary>
    /// Sets up the notebook's record and every cell's as pending (papermill's load and notebook_start); with no
    /// <paramref name="start"/> (nothing will run), the cells get an empty record as papermill's prepare-only leaves them.
    /// </summary>
    public static void Begin(Notebook notebook, string inputPath, string? outputPath, JsonObject parameters, DateTimeOffset? start)
    {
        var run = new JsonObject
        {
            ["default_parameters"] = new JsonObject(),
            ["parameters"] = parameters.DeepClone(),
            ["environment_variables"] = new JsonObject(),
            ["version"] = RunEnvironment.LabVersion,
            ["generator"] = $"lab run {RunEnvironment.LabVersion}",
            ["input_path"] = inputPath,
            ["output_path"] = outputPath,
        };
        // --prepare-only: papermill writes no times and no exception, only the paths and parameters.
        if (start is { } s)
        {
            run["start_time"] = Papermill(s);
            run["end_time"] = null;
            run["duration"] = null;
            run["exception"] = null;
        }
        notebook.Metadata["papermill"] = run;
        foreach (var cell in notebook.Cells)
        {
            cell.Metadata["papermill"] = start is null ? new JsonObject() : new JsonObject
            {
                ["exception"] = null,
                ["start_time"] = null,
                ["end_time"] = null,
                ["duration"] = null,
                ["status"] = Pending,
            };
        }
    }

    /// <summary>A cell that ran (a markdown cell the run passed: start equals end), completed or failed.</summary>
    public static void Cell(Notebook notebook, NotebookCell cell, DateTimeOffset start, DateTimeOffset end, bool failed)
    {
        cell.Metadata["papermill"] = new JsonObject
        {
            ["exception"] = failed,
            ["start_time"] = Papermill(start),
            ["end_time"] = Papermill(end),
            ["duration"] = Seconds(start, end),
            ["status"] = failed ? Failed : Completed,
        };
        if (failed && notebook.Metadata["papermill"] is JsonObject run)
        {
            run["exception"] = true;
        }
    }

    /// <summary>nbclient's timing of a code cell: busy and execute_input when it was sent, execute_reply and idle when it ended.</summary>
    public static void Execution(NotebookCell cell, DateTimeOffset start, DateTimeOffset end)
    {
        cell.Metadata["execution"] = new JsonObject
        {
            ["iopub.status.busy"] = Nbclient(start),
            ["iopub.execute_input"] = Nbclient(start),
            ["shell.execute_reply"] = Nbclient(end),
            ["iopub.status.idle"] = Nbclient(end),
        };
    }

    public static void End(Notebook notebook, DateTimeOffset start, DateTimeOffset end)
    {
        if (notebook.Metadata["papermill"] is JsonObject run)
        {
            run["end_time"] = Papermill(end);
            run["duration"] = Seconds(start, end);
        }
    }

    /// <summary>
    /// Papermill's duration: the difference of the two times as written, to the microsecond. The clock's 100 ns ticks
    /// would make it differ from the written times in the seventh digit.
    /// </summary>
    internal static double Seconds(DateTimeOffset start, DateTimeOffset end) =>
        (ToMicroseconds(end) - ToMicroseconds(start)) / 1_000_000.0;

    private static long ToMicroseconds(DateTimeOffset t) => t.UtcTicks / TimeSpan.TicksPerMicrosecond;

    /// <summary>Python's <c>datetime.isoformat()</c> of an aware UTC time, always with microseconds.</summary>
    internal static string Papermill(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'+00:00'", CultureInfo.InvariantCulture);

    /// <summary>nbclient's <c>%Y-%m-%dT%H:%M:%S.%fZ</c>.</summary>
    internal static string Nbclient(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Removes what an earlier run (lab's or papermill's) left on a cell.</summary>
    public static void Clear(NotebookCell cell)
    {
        cell.Metadata.Remove("papermill");
        cell.Metadata.Remove("execution");
    }
}
