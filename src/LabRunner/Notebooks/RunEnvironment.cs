using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using LabKernel.Processes;

namespace LabRunner.Notebooks;

/// <summary>What a report says about where a notebook ran: lab version, host, QEMU and libvirt versions, accelerator.</summary>
internal static class RunEnvironment
{
    public static string LabVersion =>
        typeof(RunEnvironment).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(RunEnvironment).Assembly.GetName().Version?.ToString() ?? "unknown";

    public static async Task<JsonObject> DescribeAsync(CancellationToken cancellationToken = default)
    {
        var qemu = VersionOf("qemu-system-x86_64", cancellationToken);
        var libvirt = VersionOf("libvirtd", cancellationToken);
        return new JsonObject
        {
            ["lab_version"] = LabVersion,
            ["host"] = Environment.MachineName,
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["processors"] = Environment.ProcessorCount,
            ["qemu_version"] = await qemu.ConfigureAwait(false),
            ["libvirt_version"] = await libvirt.ConfigureAwait(false),
            ["accelerator"] = Environment.GetEnvironmentVariable("LAB_ACCEL") is { Length: > 0 } a ? a : "unknown",
        };
    }

    /// <summary>The first line of `PROGRAM --version`, or null when the program is absent or fails.</summary>
    private static async Task<string?> VersionOf(string program, CancellationToken cancellationToken)
    {
        if (ProcessRunner.Which(program) is not { } path)
        {
            return null;
        }
        try
        {
            var r = await ProcessRunner.RunAsync(path, ["--version"], new ProcessOptions { Timeout = TimeSpan.FromSeconds(15), Check = false }, cancellationToken).ConfigureAwait(false);
            return r.Succeeded ? r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() : null;
        }
        catch (LabKernel.LabException)
        {
            return null;
        }
    }
}
