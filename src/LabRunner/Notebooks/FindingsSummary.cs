using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel.Experiments;

namespace LabRunner.Notebooks;

/// <summary>
/// The findings an executed notebook showed, read from their structured output
/// (<c>application/vnd.labnotebooks.findings+json</c>, written beside every findings table by LabNotebooks' formatter,
/// in <c>lab run</c> as in VS Code): the verdict counts a report's header shows, and the refuted claims the notebook
/// did not declare expected, which make <c>lab run</c> exit with <see cref="RunExitCodes.RefutedFinding"/>.
/// </summary>
internal sealed record FindingsSummary(int Confirmed, int Refuted, int RefutedExpected, int Info, IReadOnlyList<string> Unexpected)
{
    /// <summary>Hypotheses tested (either verdict is a result; a refuted one does not fail the run). Counted within the others too.</summary>
    public int HypothesesRefuted { get; init; }

    public const string MimeType = "application/vnd.labnotebooks.findings+json";

    /// <summary>Every distinct finding, in the order the notebook first shows it (the report's findings table).</summary>
    public IReadOnlyList<FindingRow> Rows { get; init; } = [];

    /// <summary>
    /// Every measurement the notebook showed, each name once in the order first shown, with the value shown last (a
    /// cell run again measures again, as <see cref="Findings.Measure"/> keeps the newer value); data beside the
    /// verdicts, which never changes the exit code.
    /// </summary>
    public IReadOnlyList<Measurement> Measurements { get; init; } = [];

    public int Total => Confirmed + Refuted + RefutedExpected + Info;

    /// <summary>"12 confirmed, 1 refuted (expected), 3 info".</summary>
    public string Text =>
        string.Join(", ", new[]
        {
            (Confirmed, "confirmed"), (Refuted, "refuted"), (RefutedExpected - HypothesesRefuted, "refuted (expected)"), (HypothesesRefuted, "hypothesis refuted"), (Info, "info"),
        }.Where(p => p.Item1 > 0).Select(p => $"{p.Item1} {p.Item2}"));

    /// <summary>Every distinct finding and measurement shown anywhere in the notebook; null when it shows neither.</summary>
    public static FindingsSummary? From(Notebook notebook)
    {
        var seen = new HashSet<(string, string, string)>();
        int confirmed = 0, refuted = 0, expected = 0, info = 0, hypothesesRefuted = 0;
        var unexpected = new List<string>();
        var rows = new List<FindingRow>();
        var measurements = new List<Measurement>();
        foreach (var output in notebook.Cells.SelectMany(c => c.Outputs))
        {
            if (MimeJson.AsObject((output["data"] as JsonObject)?[MimeType]) is not { } node)
            {
                continue;
            }
            foreach (var row in (node["findings"] as JsonArray ?? []).OfType<JsonObject>())
            {
                // A saved notebook may have been edited by hand: a member of another type reads as absent.
                var claim = StringOf(row["claim"]);
                var verdict = StringOf(row["verdict"]);
                if (!seen.Add((claim, StringOf(row["observed"]), verdict)))
                {
                    continue;
                }
                var isExpected = row["refutation_expected"] is JsonValue e && e.GetValueKind() == JsonValueKind.True;
                // A hypothesis's refutation is a result of the experiment, not a failure.
                var isHypothesis = row["hypothesis"] is JsonValue h && h.GetValueKind() == JsonValueKind.True;
                rows.Add(new FindingRow(claim, StringOf(row["observed"]), verdict, isExpected, isHypothesis));
                if (isHypothesis && verdict == "refuted")
                {
                    hypothesesRefuted++;
                    isExpected = true;
                }
                switch (verdict)
                {
                    case "confirmed": confirmed++; break;
                    case "refuted" when isExpected: expected++; break;
                    case "refuted": refuted++; unexpected.Add(claim); break;
                    default: info++; break;
                }
            }
            // Outputs written before measurements existed have none: the member is absent, and so are they.
            foreach (var m in (node["measurements"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var name = StringOf(m["name"]);
                if (name.Length > 0 && m["value"] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && double.IsFinite(v.GetValue<double>()))
                {
                    Measurement.Keep(measurements, new Measurement(name, v.GetValue<double>(), StringOf(m["unit"])));
                }
            }
        }
        return seen.Count == 0 && measurements.Count == 0 ? null
            : new FindingsSummary(confirmed, refuted, expected, info, unexpected) { HypothesesRefuted = hypothesesRefuted, Rows = rows, Measurements = measurements };
    }

    private static string StringOf(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : "";

    /// <summary>The counts for the executed notebook's metadata, with the measurements when there are any.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["confirmed"] = Confirmed,
            ["refuted"] = Refuted,
            ["refuted_expected"] = RefutedExpected - HypothesesRefuted,
            ["hypotheses_refuted"] = HypothesesRefuted,
            ["info"] = Info,
            ["unexpected"] = new JsonArray([.. Unexpected.Select(c => (JsonNode)JsonValue.Create(c))]),
        };
        if (Measurements.Count > 0)
        {
            json["measurements"] = MeasurementJson.Values(Measurements);
            if (MeasurementJson.Units(Measurements) is { Count: > 0 } units)
            {
                json["units"] = units;
            }
        }
        return json;
    }
}

/// <summary>Measurements as the runner keeps and writes them.</summary>
internal static class MeasurementJson
{
    /// <summary><c>{name: value, ...}</c>: the shape a sweep's records and results.jsonl hold them in, one column per name.</summary>
    public static JsonObject Values(IEnumerable<Measurement> measurements) =>
        new(measurements.Select(m => KeyValuePair.Create(m.Name, (JsonNode?)JsonValue.Create(m.Value))));

    /// <summary><c>{name: unit, ...}</c> for the measurements that have a unit.</summary>
    public static JsonObject Units(IEnumerable<Measurement> measurements) =>
        new(measurements.Where(m => m.Unit.Length > 0).Select(m => KeyValuePair.Create(m.Name, (JsonNode?)JsonValue.Create(m.Unit))));
}

/// <summary>One finding as the notebook showed it.</summary>
internal sealed record FindingRow(string Claim, string Observed, string Verdict, bool RefutationExpected, bool Hypothesis)
{
    /// <summary>A refutation nobody declared expected: what fails the run (exit 4).</summary>
    public bool IsUnexpectedRefutation => Verdict == "refuted" && !RefutationExpected && !Hypothesis;

    /// <summary>As the lab's findings table says it: "refuted (expected)", "confirmed (hypothesis)".</summary>
    public string VerdictText => Hypothesis ? $"{Verdict} (hypothesis)" : RefutationExpected && Verdict == "refuted" ? "refuted (expected)" : Verdict;
}
