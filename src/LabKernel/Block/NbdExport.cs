using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Journal;
using LabKernel.Qmp;
using LabKernel.Processes;

namespace LabKernel.Block;

/// <summary>
/// An image exported over NBD on a unix socket by a separate <c>qemu-storage-daemon</c> process: remote storage
/// the lab can cut (<see cref="StopAsync"/> kills the daemon, as an NFS server going away) and bring back
/// (<see cref="StartAsync(CancellationToken)"/> again, same socket, same export). A machine reaches it through an <c>nbd</c> node
/// (<see cref="NodeOptions"/>) whose <c>reconnect-delay</c> decides how long requests wait for the server.
/// </summary>
public sealed class NbdExport : IAsyncDisposable
{
    private int? _pid;

    private readonly Host.ILabHost _host;

    private NbdExport(Host.ILabHost host, string image, string format, string socketPath, string exportName)
    {
        _host = host;
        Image = image;
        Format = format;
        SocketPath = socketPath;
        ExportName = exportName;
    }

    /// <summary>The exported image.</summary>
    public string Image { get; }

    public string Format { get; }

    /// <summary>The NBD server's unix socket.</summary>
    public string SocketPath { get; }

    /// <summary>The NBD export name.</summary>
    public string ExportName { get; }

    /// <summary>The daemon's process id while it runs.</summary>
    public int? ProcessId => _pid;

    /// <summary>Whether the daemon runs (on another host: it was started and not stopped since).</summary>
    public bool IsRunning => _pid is { } pid && (!_host.IsLocal || Alive(pid));

    /// <summary>
    /// Starts <c>qemu-storage-daemon --daemonize</c> exporting <paramref name="image"/> writable on
    /// <paramref name="socketPath"/>; returns once the daemon is initialised (its parent exits only then). On another
    /// <paramref name="host"/> (this machine when null) the daemon, image and socket are there, beside the QEMU that
    /// connects to it.
    /// </summary>
    public static async Task<NbdExport> StartAsync(string image, string socketPath, string exportName = "lab", string format = "qcow2", CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        host ??= Host.LocalHost.Instance;
        if (!await host.FileExistsAsync(image, cancellationToken).ConfigureAwait(false))
        {
            throw new LabUsageException($"image to export not found: {image}");
        }
        var export = new NbdExport(host, Path.GetFullPath(image), format, Path.GetFullPath(socketPath), exportName);
        await export.StartAsync(cancellationToken).ConfigureAwait(false);
        return export;
    }

    /// <summary>(Re)starts the daemon on the same socket and export.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning)
        {
            throw new LabUsageException($"the NBD export of {Image} is already served (pid {_pid})");
        }
        await _host.DeleteFileAsync(SocketPath, cancellationToken).ConfigureAwait(false);
        var pidFile = SocketPath + ".pid";
        await _host.DeleteFileAsync(pidFile, cancellationToken).ConfigureAwait(false);
        await _host.RunAsync("qemu-storage-daemon",
        [
            "--blockdev", $"driver=file,node-name=exp-file,filename={Escape(Image)}",
            "--blockdev", $"driver={Format},node-name=exp,file=exp-file",
            "--nbd-server", $"addr.type=unix,addr.path={Escape(SocketPath)}",
            "--export", $"type=nbd,id=exp0,node-name=exp,name={ExportName},writable=on",
            "--pidfile", pidFile,
            "--daemonize",
        ], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        _pid = int.Parse(System.Text.Encoding.ASCII.GetString(await _host.ReadAllBytesAsync(pidFile, cancellationToken).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Stops the daemon and waits until it is gone: SIGTERM by default (a clean service stop, as
    /// <c>service nfs stop</c>: the daemon closes its connections and flushes the image), SIGKILL with
    /// <paramref name="crash"/> (the storage just disappears; unflushed qcow2 metadata is lost with it).
    /// </summary>
    public async Task StopAsync(bool crash = false, CancellationToken cancellationToken = default)
    {
        if (_pid is not { } pid)
        {
            return;
        }
        if (!_host.IsLocal)
        {
            try
            {
                await StopThereAsync(pid, crash, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Gone, or SIGKILLed at the limit: either way not served any more, so a restart may start it again.
                _pid = null;
            }
            return;
        }
        Process p;
        try
        {
            p = Process.GetProcessById(pid);
        }
        catch (ArgumentException)
        {
            _pid = null;
            return;
        }
        using (p)
        {
            if (crash)
            {
                var entry = LabJournal.Current.Begin("process", $"kill -KILL {pid}");
                p.Kill();
                entry.Complete("killed");
            }
            else
            {
                await ProcessRunner.RunAsync("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)], new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(10) }, cancellationToken).ConfigureAwait(false);
            }
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await p.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                p.Kill();
                throw new LabTimeoutException($"qemu-storage-daemon (pid {pid}) to exit", TimeSpan.FromSeconds(30), "killed it");
            }
        }
        _pid = null;
    }

    /// <summary>
    /// <c>blockdev-add</c> arguments for an <c>nbd</c> client node on this export. While the server is away,
    /// requests wait up to <paramref name="reconnectDelay"/> for it to come back, then fail.
    /// </summary>
    public JsonObject NodeOptions(string nodeName, TimeSpan reconnectDelay) =>
        QmpJson.Args(new NbdNodeOptions("nbd", nodeName, new UnixSocketAddress("unix", SocketPath), ExportName, (long)reconnectDelay.TotalSeconds));

    /// <summary>On another host: the signal by <c>kill</c> there, then <c>kill -0</c> until the daemon is gone (30 s, then SIGKILL).</summary>
    private async Task StopThereAsync(int pid, bool crash, CancellationToken cancellationToken)
    {
        var id = pid.ToString(CultureInfo.InvariantCulture);
        var quick = new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(10) };
        await _host.RunAsync("kill", [crash ? "-KILL" : "-TERM", id], quick, cancellationToken).ConfigureAwait(false);
        try
        {
            // kill -0 exits 1 once the process is gone (127 would be a missing kill, not a gone daemon).
            await Host.Poll.UntilAsync(async ct => ((await _host.RunAsync("sh", ["-c", "kill -0 \"$1\" 2>/dev/null", "sh", id], quick, ct).ConfigureAwait(false)).ExitCode == 1, $"pid {id} still runs"),
                $"qemu-storage-daemon (pid {id}) on {_host.Name} to exit", TimeSpan.FromSeconds(30), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            await _host.RunAsync("kill", ["-KILL", id], quick, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stops the daemon if it still runs; the image stays.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _host.DeleteFileAsync(SocketPath).ConfigureAwait(false);
        await _host.DeleteFileAsync(SocketPath + ".pid").ConfigureAwait(false);
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>
    /// <c>blockdev-add</c>'s arguments for an <c>nbd</c> client node. <c>reconnect-delay</c> is in whole seconds,
    /// as QEMU takes it.
    /// </summary>
    private sealed record NbdNodeOptions(string Driver, string NodeName, UnixSocketAddress Server, string Export, long ReconnectDelay);

    /// <summary>A QAPI <c>SocketAddress</c> of type <c>unix</c>: the export's socket file.</summary>
    private sealed record UnixSocketAddress(string Type, string Path);
}
