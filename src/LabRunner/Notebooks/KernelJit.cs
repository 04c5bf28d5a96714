namespace LabRunner.Notebooks;

/// <summary>
/// How the runtime compiles the kernel process's code. A kernel lives for one notebook: most of its own CPU time
/// went to the JIT (Roslyn, .NET Interactive and the lab's libraries are compiled afresh in each kernel, and the
/// runtime's tiering compiled hot methods a second and a third time, instrumented and then optimised). With
/// profile-guided tiering off and a method promoted to optimised code only after 1,000 calls (the runtime's default is
/// 30), a run of notebook 01 took about a quarter less CPU here (0.77x) and ended 0.7 s sooner (<c>bench runner</c>
/// measures it side by side). The code run is the same; only when it is compiled changes.
/// <c>LAB_KERNEL_JIT=default</c> leaves the runtime's defaults, and a setting already in the environment is kept.
/// </summary>
public static class KernelJit
{
    /// <summary>The variable that turns these settings off (<c>default</c>).</summary>
    public const string Variable = "LAB_KERNEL_JIT";

    /// <summary>The settings the kernel gets.</summary>
    public static IReadOnlyList<(string Name, string Value)> Tuned { get; } =
    [
        ("DOTNET_TieredPGO", "0"),
        ("DOTNET_TC_CallCountThreshold", "1000"),
    ];

    /// <summary>
    /// The variables to set in the kernel's environment, given the runner's (<paramref name="lookup"/>): none when
    /// <c>LAB_KERNEL_JIT=default</c>, and none that the environment already sets.
    /// </summary>
    public static IReadOnlyList<(string Name, string Value)> Settings(Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        if (string.Equals(lookup(Variable)?.Trim(), "default", StringComparison.OrdinalIgnoreCase))
        {
            return [];
        }
        return [.. Tuned.Where(s => string.IsNullOrEmpty(lookup(s.Name)))];
    }
}
