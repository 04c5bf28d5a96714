namespace LabRunner.Notebooks;

/// <summary>Kernel names as Polyglot Notebooks writes them, and which of them <c>lab run</c> executes.</summary>
internal static class Languages
{
    public const string CSharp = "csharp";

    /// <summary>
    /// The kernels a .dib cell may start with (<c>#!name</c> or <c>#!alias</c>, matched exactly, as Polyglot matches
    /// them), besides those its <c>#!meta</c> block declares: the dotnet-interactive tool's kernels with their aliases,
    /// and the other kernels VS Code's notebooks name.
    /// </summary>
    public static readonly (string Name, string[] Aliases)[] DibKernels =
    [
        (CSharp, ["c#", "C#", "cs"]), ("fsharp", ["f#", "F#", "fs"]), ("pwsh", ["powershell"]), ("markdown", ["md"]),
        ("html", []), ("javascript", ["js"]), ("sql", []), ("kql", []), ("mermaid", []), ("http", []), ("value", []),
        ("vscode", []), ("python", []), ("r", []),
    ];

    /// <summary>Every kernel name and alias, for an .ipynb cell whose first line (<c>#!fsharp</c>) switches its kernel.</summary>
    public static readonly string[] KnownKernels = [.. DibKernels.SelectMany(k => k.Aliases.Prepend(k.Name))];

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
