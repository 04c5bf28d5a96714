using System.Text.Json;

namespace LabRunner.Notebooks.Scripting;

/// <summary>Used by injected-parameters cells: reads a JSON value as the type of the variable it replaces.</summary>
public static class ParameterJson
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

#pragma warning disable IDE0060 // the current value only carries its type
    public static T Read<T>(T current, string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new ArgumentException($"parameter value {json} is null");
#pragma warning restore IDE0060
}
