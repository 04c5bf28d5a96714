using System.Text.Json;
using System.Text.Json.Nodes;

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

    public int Total => Confirmed + Refuted + RefutedExpected + Info;

    /// <summary>"12 confirmed, 1 refuted (expected), 3 info".</summary>
    public string Text =>
        string.Join(", ", new[]
        {
            (Confirmed, "confirmed"), (Refuted, "refuted"), (RefutedExpected - HypothesesRefuted, "refuted (expected)"), (HypothesesRefuted, "hypothesis refuted"), (Info, "info"),
        }.Where(p => p.Item1 > 0).Select(p => $"{p.Item1} {p.Item2}"));

    /// <summary>Every distinct finding shown anywhere in the notebook; null when it shows none.</summary>
    public static FindingsSummary? From(Notebook notebook)
    {
        var seen = new HashSet<(string, string, string)>();
        int confirmed = 0, refuted = 0, expected = 0, info = 0, hypothesesRefuted = 0;
        var unexpected = new List<string>();
        var rows = new List<FindingRow>();
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
        }
        return seen.Count == 0 ? null : new FindingsSummary(confirmed, refuted, expected, info, unexpected) { HypothesesRefuted = hypothesesRefuted, Rows = rows };
    }

    private static string StringOf(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : "";

    public JsonObject ToJson() => new()
    {
        ["confirmed"] = Confirmed,
        ["refuted"] = Refuted,
        ["refuted_expected"] = RefutedExpected - HypothesesRefuted,
        ["hypotheses_refuted"] = HypothesesRefuted,
        ["info"] = Info,
        ["unexpected"] = new JsonArray([.. Unexpected.Select(c => (JsonNode)JsonValue.Create(c))]),
    };
}

/// <summary>One finding as the notebook showed it.</summary>
internal sealed record FindingRow(string Claim, string Observed, string Verdict, bool RefutationExpected, bool Hypothesis)
{
    /// <summary>A refutation nobody declared expected: what fails the run (exit 4).</summary>
    public bool IsUnexpectedRefutation => Verdict == "refuted" && !RefutationExpected && !Hypothesis;

    /// <summary>As the lab's findings table says it: "refuted (expected)", "confirmed (hypothesis)".</summary>
    public string VerdictText => Hypothesis ? $"{Verdict} (hypothesis)" : RefutationExpected && Verdict == "refuted" ? "refuted (expected)" : Verdict;
}
