namespace LabRunner.Notebooks;

/// <summary>Kernel names as Polyglot Notebooks writes them, and which of them <c>lab run</c> executes.</summary>
internal static class Languages
{
    public const string CSharp = "csharp";

    /// <summary>Kernel names that start a cell in a .dib file (besides those its #!meta block declares).</summary>
    public static readonly string[] KnownKernels =
    [
        "csharp", "fsharp", "pwsh", "powershell", "markdown", "md", "html", "javascript", "js", "sql", "kql",
        "mermaid", "http", "value", "meta", "c#", "f#", "cs", "fs", "vscode", "python", "r",
    ];

    public static string Normalize(string? name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "c#" or "cs" or "csharp" or ".net-csharp" or "dotnet-csharp" => CSharp,
        "f#" or "fs" or "fsharp" or ".net-fsharp" => "fsharp",
        "powershell" or "pwsh" or ".net-powershell" => "pwsh",
        "md" or "markdown" => "markdown",
        "js" or "javascript" => "javascript",
        var other => other,
    };

    public static bool IsCSharp(string? name) => Normalize(name) == CSharp;
}
