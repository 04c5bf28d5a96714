using System.Globalization;

namespace LabKernel.Experiments;

/// <summary>
/// Parameters for the .csx twins and file-based apps of the notebooks: <c>NAME=VALUE</c> arguments after <c>--</c>
/// (<c>lab run scripts/01-live-snapshot-integrity.csx -- Count=100000</c>,
/// <c>dotnet run scripts/01-live-snapshot-integrity.cs -- Count=100000</c>), typed by the default.
/// </summary>
public static class ScriptArgs
{
    /// <summary>
    /// The last <c>NAME=VALUE</c> in <paramref name="args"/> converted to <typeparamref name="T"/>, or the default.
    /// Takes any sequence: dotnet-script's <c>Args</c> is an <c>IList&lt;string&gt;</c>, which is not an
    /// <c>IReadOnlyList&lt;string&gt;</c> at compile time.
    /// </summary>
    public static T Get<T>(IEnumerable<string> args, string name, T defaultValue)
    {
        ArgumentNullException.ThrowIfNull(args);
        var prefix = name + "=";
        var raw = args.LastOrDefault(a => a.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
        if (raw is null)
        {
            return defaultValue;
        }
        var text = raw[prefix.Length..];
        try
        {
            return (T)Convert.ChangeType(text, typeof(T), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
        {
            throw new LabUsageException($"argument {name}: '{text}' is not a {typeof(T).Name}");
        }
    }

    /// <summary>
    /// Refuses, as one <see cref="LabUsageException"/> line, an argument that is not <c>NAME=VALUE</c> or names no
    /// parameter in <paramref name="declared"/> (case-insensitive, as <see cref="Get{T}"/> reads them), as
    /// <c>lab run -p</c> refuses a name the parameters cell does not declare.
    /// </summary>
    public static void CheckNames(IEnumerable<string> args, IReadOnlyCollection<string> declared)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(declared);
        foreach (var arg in args)
        {
            var at = arg.IndexOf('=', StringComparison.Ordinal);
            if (at <= 0)
            {
                throw new LabUsageException($"argument '{arg}': expected NAME=VALUE; the parameters are: {string.Join(", ", declared)}");
            }
            var name = arg[..at];
            if (!declared.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                throw new LabUsageException($"unknown parameter '{name}'; the parameters are: {string.Join(", ", declared)}");
            }
        }
    }
}
