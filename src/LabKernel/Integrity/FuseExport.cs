using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Host;
using LabKernel.Processes;

namespace LabKernel.Integrity;

/// <summary>How <see cref="OfflineLayerReader"/> lets the filesystem tools at a layer.</summary>
public enum OfflineView
{
    /// <summary>A FUSE view where the host can mount one, else a raw copy (the reason is kept in <see cref="OfflineLayerReader.ViewNote"/>).</summary>
    Auto,

    /// <summary>
    /// A file that <c>qemu-storage-daemon</c> exports over FUSE: a throwaway qcow2 overlay over the layer (opened
    /// read-only and shared, as <c>qemu-img -U</c> does), so the tools read only the blocks they ask for and the
    /// journal replay writes only into the overlay.
    /// </summary>
    Fuse,

    /// <summary>A raw copy of the whole layer's view (<c>qemu-img convert -U</c>): needs no FUSE, reads and writes every allocated block.</summary>
    Copy,
}

/// <summary>
/// A block node exported as a file over FUSE by a <c>qemu-storage-daemon</c> on a host, started
/// daemonized (so it works the same over SSH) and stopped with SIGTERM, which unmounts the file. The daemon's folder
/// holds an <see cref="OwnerFile"/> naming the lab process that started it, so <c>lab clean</c> can tell a view whose
/// lab process was killed (<see cref="Diagnostics.Leftovers"/>).
/// </summary>
internal sealed class FuseExport
{
    /// <summary>The file in the daemon's folder that names its lab process (<see cref="HostProcesses.Identity"/>).</summary>
    public const string OwnerFile = "owner";

    /// <summary>The daemon's pid file, in its folder.</summary>
    public const string PidFile = "daemon.pid";

    private static readonly TimeSpan StartLimit = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan ExitLimit = TimeSpan.FromSeconds(30);

    private FuseExport(ILabHost host, string mountpoint, int pid)
    {
        Host = host;
        Mountpoint = mountpoint;
        Pid = pid;
    }

    public ILabHost Host { get; }

    /// <summary>The exported file.</summary>
    public string Mountpoint { get; }

    /// <summary>The daemon's pid on <see cref="Host"/>.</summary>
    public int Pid { get; }

    /// <summary>
    /// Starts a daemon with <paramref name="nodes"/> (blockdev definitions, in order) that exports node
    /// <paramref name="exportNode"/> as the new file <paramref name="mountpoint"/> (writable: the writes land in
    /// whatever the node writes to). Returns once the file is mounted (the daemon forks only then).
    /// </summary>
    public static async Task<FuseExport> StartAsync(ILabHost host, string folder, IReadOnlyList<JsonObject> nodes, string exportNode, string mountpoint, CancellationToken cancellationToken)
    {
        await host.WriteAllBytesAsync(mountpoint, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        if (host.IsLocal && !await host.FileExistsAsync(Path.Combine(folder, OwnerFile), cancellationToken).ConfigureAwait(false))
        {
            await host.WriteAllBytesAsync(Path.Combine(folder, OwnerFile), System.Text.Encoding.ASCII.GetBytes(HostProcesses.Identity(Environment.ProcessId) ?? ""), cancellationToken).ConfigureAwait(false);
        }
        var pidFile = Path.Combine(folder, PidFile);
        var export = new JsonObject
        {
            ["type"] = "fuse",
            ["id"] = "view",
            ["node-name"] = exportNode,
            ["mountpoint"] = mountpoint,
            ["writable"] = true,
        };
        var args = new List<string>();
        foreach (var node in nodes)
        {
            args.AddRange(["--blockdev", node.ToJsonString()]);
        }
        args.AddRange(["--export", export.ToJsonString(), "--pidfile", pidFile, "--daemonize"]);
        var r = await host.RunAsync("qemu-storage-daemon", args, new ProcessOptions { Check = false, Timeout = StartLimit }, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            throw new LabException($"qemu-storage-daemon could not export {Path.GetFileName(mountpoint)} over FUSE on {host.Name}: {FirstLine(r)}");
        }
        var pidText = System.Text.Encoding.ASCII.GetString(await host.ReadAllBytesAsync(pidFile, cancellationToken).ConfigureAwait(false)).Trim();
        return new FuseExport(host, mountpoint, int.Parse(pidText, NumberStyles.None, CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Stops the daemon (SIGTERM: it unmounts the file and closes its images) and waits for it to exit; one that is
    /// still there after <see cref="ExitLimit"/> is killed and its mount detached.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var pid = Pid.ToString(CultureInfo.InvariantCulture);
        await Host.RunAsync("kill", ["-TERM", pid], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        try
        {
            await WaitForExitAsync(Host, Pid, $"qemu-storage-daemon {Pid} (the FUSE view {Mountpoint}) to exit after SIGTERM", ExitLimit, cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            await Host.RunAsync("kill", ["-KILL", pid], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            await Host.RunAsync("umount", ["-l", Mountpoint], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            LabWarnings.Raise($"qemu-storage-daemon {Pid} on {Host.Name} did not exit within {ExitLimit.TotalSeconds:0} s of SIGTERM: killed, {Mountpoint} detached");
        }
    }

    /// <summary>
    /// Waits until process <paramref name="pid"/> on <paramref name="host"/> has exited: gone, or a zombie (a daemon's
    /// parent is the host's init, which may reap it only seconds later; a zombie holds no files and no mount).
    /// </summary>
    internal static Task WaitForExitAsync(ILabHost host, int pid, string awaited, TimeSpan limit, CancellationToken cancellationToken) =>
        Poll.UntilAsync(async ct =>
        {
            var state = await ProcessStateAsync(host, pid, ct).ConfigureAwait(false);
            return (state is null or 'Z', state is { } s ? $"state {s}" : "");
        }, awaited, limit, cancellationToken: cancellationToken);

    /// <summary>The state letter of <c>/proc/PID/stat</c> (R, S, D, Z, ...), or null when there is no such process.</summary>
    private static async Task<char?> ProcessStateAsync(ILabHost host, int pid, CancellationToken cancellationToken)
    {
        var path = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat";
        string stat;
        if (host.IsLocal)
        {
            try
            {
                stat = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return null;
            }
        }
        else
        {
            var r = await host.RunAsync("cat", [path], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            if (!r.Succeeded)
            {
                return null;
            }
            stat = r.StandardOutput;
        }
        return stat.LastIndexOf(')') is var close and >= 0 && close + 2 < stat.Length ? HostProcesses.StatFields(stat)[0][0] : null;
    }

    private static string FirstLine(ProcessResult r) =>
        r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? $"exit {r.ExitCode}";

    /// <summary>A qcow2 node over <paramref name="overlay"/> whose backing is <paramref name="image"/>, opened read-only and shared (its own backing files inherit both).</summary>
    public static JsonObject OverlayNode(string nodeName, string overlay, string image, string imageFormat) => new()
    {
        ["driver"] = "qcow2",
        ["node-name"] = nodeName,
        ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = overlay },
        ["backing"] = new JsonObject
        {
            ["driver"] = imageFormat,
            ["read-only"] = true,
            ["force-share"] = true,
            ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = image, ["read-only"] = true, ["force-share"] = true },
        },
    };

    /// <summary>A raw node showing bytes <paramref name="offset"/> to offset + <paramref name="length"/> of node <paramref name="of"/> (a partition).</summary>
    public static JsonObject SliceNode(string nodeName, string of, long offset, long length) => new()
    {
        ["driver"] = "raw",
        ["node-name"] = nodeName,
        ["file"] = of,
        ["offset"] = offset,
        ["size"] = length,
    };
}
