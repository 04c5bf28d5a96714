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
            ["accelerator"] = await AcceleratorAsync(cancellationToken).ConfigureAwait(false),
        };
    }

    /// <summary>
    /// The accelerator the lab's guests get on this host, decided as they decide it (LAB_ACCEL, PVM detection, the
    /// cached probe of the guest image's kernel), with the reason: e.g. "tcg (PVM host detected ...)".
    /// </summary>
    private static async Task<string> AcceleratorAsync(CancellationToken cancellationToken)
    {
        try
        {
            var choice = await LabKernel.Machines.Accelerator.ChooseAsync(LabKernel.Guests.GuestImageBuilder.TryGetCached()?.Kernel, cancellationToken).ConfigureAwait(false);
            return $"{choice.Name} ({choice.Reason})";
        }
        catch (LabKernel.LabException e)
        {
            return $"not decided: {e.Message}";
        }
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
