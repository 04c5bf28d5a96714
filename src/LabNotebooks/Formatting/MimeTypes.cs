namespace LabNotebooks;

/// <summary>The MIME types the lab's values render to.</summary>
public static class MimeTypes
{
    public const string PlainText = "text/plain";
    public const string Html = "text/html";
    public const string Markdown = "text/markdown";
    public const string Json = "application/json";

    /// <summary>
    /// A plotly figure as a JSON object (<c>data</c>, <c>layout</c>). Jupyter's and VS Code's renderers draw it with
    /// the plotly.js they ship, so an executed notebook needs no network; lab reports draw it with the plotly.js
    /// they inline once.
    /// </summary>
    public const string Plotly = "application/vnd.plotly.v1+json";

    /// <summary>
    /// An experiment's findings as JSON (<c>{"findings": [{"claim", "observed", "verdict", "refutation_expected"}]}</c>,
    /// and <c>"measurements": [{"name", "value", "unit"}]</c> when the run measured anything), beside their table: what
    /// <c>lab run</c> and <c>lab report</c> count and <c>lab sweep</c> compares, in notebooks run anywhere.
    /// </summary>
    public const string Findings = "application/vnd.labnotebooks.findings+json";
}
