using LabKernel.Processes;

namespace LabKernel.Host;

/// <summary>The filesystem a path is on: its mount point and type, from <c>findmnt --target</c>.</summary>
public sealed record FilesystemOf(string MountPoint, string Type, string Source)
{
    /// <summary>Looks <paramref name="path"/> up (a file or folder that exists) on <paramref name="host"/> (this machine when null).</summary>
    public static async Task<FilesystemOf> LookUpAsync(string path, CancellationToken cancellationToken = default, ILabHost? host = null)
    {
        var r = await (host ?? LocalHost.Instance).RunAsync("findmnt", ["-n", "-o", "TARGET,FSTYPE,SOURCE", "--target", path],
            new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        var parts = r.StandardOutput.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 3 ? new FilesystemOf(parts[0], parts[1], parts[2])
            : throw new LabException($"findmnt printed no filesystem for {path}: '{r.StandardOutput.Trim()}'");
    }

    public override string ToString() => $"{Type} {Source} on {MountPoint}";
}
