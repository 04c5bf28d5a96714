using System.Globalization;
using System.Text.Json.Nodes;
using LabRunner.Notebooks;

namespace LabRunner.Reporting;

/// <summary>
/// How a code cell ran, read from whichever host executed the notebook: <c>lab run</c> (<c>metadata.lab</c>),
/// dotnet-repl (<c>metadata.dotnet_repl_cellExecutionStartTime</c>/<c>EndTime</c>, no execution count), or Jupyter
/// (<c>jupyter nbconvert --execute</c>, VS Code's Jupyter path: <c>execution_count</c> and
/// <c>metadata.execution</c> with the kernel's <c>iopub.status.busy</c>/<c>idle</c> times). An error output makes
/// the cell <c>error</c>; a cell with no sign of having run is <c>not-run</c>.
/// </summary>
internal sealed record CellRun(string Status, double? Seconds, string? SkipReason)
{
    public static CellRun Of(NotebookCell cell)
    {
        if (cell.Metadata["lab"] is JsonObject lab && lab["status"] is JsonValue s)
        {
            var seconds = lab["duration"] is JsonValue d && d.TryGetValue<double>(out var v) ? v : (double?)null;
            return new CellRun(s.ToString(), seconds, lab["skip_reason"]?.ToString());
        }
        var failed = cell.Outputs.Any(o => o["output_type"]?.GetValue<string>() == "error");
        double? elapsed = null;
        var ran = false;
        if (Time(cell.Metadata["dotnet_repl_cellExecutionStartTime"]) is { } start)
        {
            ran = true;
            elapsed = Time(cell.Metadata["dotnet_repl_cellExecutionEndTime"]) is { } end ? (end - start).TotalSeconds : null;
        }
        else if (cell.Metadata["execution"] is JsonObject execution)
        {
            ran = true;
            var from = Time(execution["iopub.status.busy"]) ?? Time(execution["iopub.execute_input"]);
            var to = Time(execution["iopub.status.idle"]) ?? Time(execution["shell.execute_reply"]);
            elapsed = from is { } f && to is { } t ? (t - f).TotalSeconds : null;
        }
        ran |= cell.ExecutionCount is not null || cell.Outputs.Count > 0;
        return new CellRun(failed ? "error" : ran ? "ok" : "not-run", elapsed is { } e ? Math.Max(0, e) : null, null);
    }

    private static DateTimeOffset? Time(JsonNode? node) =>
        node is JsonValue v && DateTimeOffset.TryParse(v.ToString(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t) ? t : null;
}
