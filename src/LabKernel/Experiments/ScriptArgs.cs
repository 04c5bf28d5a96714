using System.Globalization;

namespace LabKernel.Experiments;

/// <summary>
/// Parameters for the .csx twins of the notebooks: <c>NAME=VALUE</c> arguments after <c>--</c>
/// (<c>lab run scripts/01-live-snapshot-integrity.csx -- Count=100000</c>), typed by the default.
/// </summary>
public static class ScriptArgs
{
    public static T Get<T>(IReadOnlyList<string> args, string name, T defaultValue)
    {
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
}
