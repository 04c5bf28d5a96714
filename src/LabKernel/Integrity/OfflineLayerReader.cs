using LabKernel.GuestAgent;
using LabKernel.Host;
using System.Text.Json.Nodes;
using LabKernel.Processes;

namespace LabKernel.Integrity;

/// <summary>A read-only view of files in a guest filesystem, however it is reached.</summary>
public interface IFileView
{
    Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>The file's bytes; throws when it does not exist.</summary>
    Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default);
}

/// <summary>
/// Reads files out of one layer of a chain (the layer and its backing files, as a guest booted on it would see
/// the disk) without modifying any image and without booting a guest. The filesystem tools reach the layer through
/// a view (<see cref="OfflineView"/>): by default a file <c>qemu-storage-daemon</c> exports over FUSE, a throwaway
/// overlay over the layer, so they read only the blocks they ask for; where the host cannot mount one, a raw copy
/// of the whole layer (<c>qemu-img convert -U</c>). <c>e2fsck -E journal_only</c> replays the ext4 journal into the
/// view (as a mount would; the layer itself is opened read-only), and <c>debugfs</c> dumps files. On a partitioned
/// disk (MBR or GPT) the largest partition with an ext filesystem is read (<see cref="DiskLayout"/>). The source
/// document booted a second VM directly on the old layer, which writes to it and changes the evidence; this does
/// not. All of it runs on the host that has the image (<see cref="ILabHost"/>): on a remote hypervisor the view,
/// the replay and the reads happen there, and only the files asked for come back.
/// </summary>
public sealed class OfflineLayerReader : IFileView, IAsyncDisposable
{
    private static readonly HashSet<string> WarnedHosts = new(StringComparer.Ordinal);

    private readonly string _scratch;
    private readonly ILabHost _host;
    private readonly FuseExport? _export;

    private OfflineLayerReader(ILabHost host, string image, string scratch, string file, FuseExport? export, string? viewNote, bool neededRecovery)
    {
        _host = host;
        Image = image;
        _scratch = scratch;
        ViewFile = file;
        _export = export;
        ViewNote = viewNote;
        NeededJournalRecovery = neededRecovery;
    }

    /// <summary>
    /// Whether the layer's ext4 was left mid-transaction (the <c>needs_recovery</c> feature set, as after a crash):
    /// true for a crash-consistent snapshot of a mounted filesystem, false for one taken frozen or unmounted.
    /// </summary>
    public bool NeededJournalRecovery { get; }

    /// <summary>The layer read.</summary>
    public string Image { get; }

    /// <summary>The file the filesystem tools read: the FUSE view or the raw copy (gone on dispose).</summary>
    public string ViewFile { get; }

    /// <summary>How the layer is read: <see cref="OfflineView.Fuse"/> or <see cref="OfflineView.Copy"/>.</summary>
    public OfflineView View => _export is null ? OfflineView.Copy : OfflineView.Fuse;

    /// <summary>Why a raw copy was made where a FUSE view was asked for first (<see cref="OfflineView.Auto"/>); null otherwise.</summary>
    public string? ViewNote { get; }

    /// <summary>
    /// Opens a view of the layer in a new private folder under <paramref name="scratchFolder"/> (the temp folder when
    /// null) and replays its journal there, all on <paramref name="host"/> (this machine when null). With
    /// <see cref="OfflineView.Fuse"/> a host that cannot export one is an error; with <see cref="OfflineView.Auto"/>
    /// it gets a raw copy, the reason in <see cref="ViewNote"/> (and a warning, once per host).
    /// </summary>
    public static async Task<OfflineLayerReader> OpenAsync(string image, string? scratchFolder = null, CancellationToken cancellationToken = default, ILabHost? host = null, OfflineView view = OfflineView.Auto)
    {
        host ??= LocalHost.Instance;
        if (!await host.FileExistsAsync(image, cancellationToken).ConfigureAwait(false))
        {
            throw new LabUsageException($"image not found: {image}{(host.IsLocal ? "" : $" on {host.Name}")}");
        }
        if (host.IsLocal)
        {
            image = Path.GetFullPath(image);
        }
        // A view of someone's disk is as private as the disk: a 0700 folder, 0600 files.
        var scratch = await host.CreateTempDirectoryAsync("layer-read-", scratchFolder ?? (host.IsLocal ? Path.GetTempPath() : null), cancellationToken).ConfigureAwait(false);
        FuseExport? export = null;
        try
        {
            string? note = null;
            if (view != OfflineView.Copy)
            {
                try
                {
                    export = await OpenFuseViewAsync(host, image, scratch, cancellationToken).ConfigureAwait(false);
                }
                catch (LabException e) when (view == OfflineView.Auto && e is not LabUsageException)
                {
                    note = $"no FUSE view ({e.Message}): a raw copy of the whole layer instead";
                    bool first;
                    lock (WarnedHosts)
                    {
                        first = WarnedHosts.Add(host.Name);
                    }
                    if (first)
                    {
                        LabWarnings.Raise($"offline reads on {host.Name} copy whole layers: {note}");
                    }
                }
            }
            var file = export?.Mountpoint ?? await OpenRawCopyAsync(host, image, scratch, cancellationToken).ConfigureAwait(false);
            var header = await host.RunAsync("dumpe2fs", ["-h", file], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(2) }, cancellationToken).ConfigureAwait(false);
            var neededRecovery = header.StandardOutput.Split('\n').Any(l => l.StartsWith("Filesystem features:", StringComparison.Ordinal) && l.Contains("needs_recovery", StringComparison.Ordinal));
            // Exit codes 0-2 mean clean or fixed; the view is ours to modify (a copy, or an overlay over the layer).
            var fsck = await host.RunAsync("e2fsck", ["-y", "-E", "journal_only", file], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
            if (fsck.ExitCode > 2)
            {
                throw new ProcessFailedException(fsck);
            }
            return new OfflineLayerReader(host, image, scratch, file, export, note, neededRecovery);
        }
        catch
        {
            if (export is not null)
            {
                await export.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            await host.DeleteDirectoryAsync(scratch, recursive: true, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }
    /// <summary>
    /// Whether <paramref name="host"/> can give offline reads a FUSE view: exports a 1 MiB scratch image over FUSE in a
    /// new folder under <paramref name="parent"/>, reads it and stops. Null when it can, else why not (one line).
    /// </summary>
    public static async Task<string?> ProbeFuseAsync(ILabHost host, string? parent = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var scratch = await host.CreateTempDirectoryAsync("layer-read-probe-", parent ?? (host.IsLocal ? Path.GetTempPath() : null), cancellationToken).ConfigureAwait(false);
        try
        {
            var image = Path.Combine(scratch, "probe.raw");
            LabFiles.MarkCreated(image, host);
            await host.RunAsync("qemu-img", ["create", "-q", "-f", "raw", image, "1M"], new ProcessOptions { Timeout = TimeSpan.FromMinutes(1) }, cancellationToken).ConfigureAwait(false);
            var node = new JsonObject { ["driver"] = "raw", ["node-name"] = "probe", ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = image } };
            var export = await FuseExport.StartAsync(host, scratch, [node], "probe", Path.Combine(scratch, "view.raw"), cancellationToken).ConfigureAwait(false);
            try
            {
                var size = await host.FileSizeAsync(export.Mountpoint, cancellationToken).ConfigureAwait(false);
                return size == 1 << 20 ? null : $"the exported file reads {size} bytes, not 1 MiB";
            }
            finally
            {
                await export.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (LabException e) when (e is not LabUsageException)
        {
            return e.Message.Split('\n')[0];
        }
        finally
        {
            await host.DeleteDirectoryAsync(scratch, recursive: true, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A FUSE view of the layer's filesystem: a throwaway qcow2 overlay over the layer (<c>qemu-img create -u</c>: the
    /// layer is not opened, so one a running QEMU holds is fine), exported whole; on a partitioned disk the daemon is
    /// started again exporting only the partition with the filesystem (a raw node at its offset).
    /// </summary>
    private static async Task<FuseExport> OpenFuseViewAsync(ILabHost host, string image, string scratch, CancellationToken cancellationToken)
    {
        var info = await Images.QemuImg.On(host).InfoAsync(image, forceShare: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        var overlay = Path.Combine(scratch, "overlay.qcow2");
        LabFiles.MarkCreated(overlay, host);
        await host.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-u", "-b", image, "-F", info.Format, overlay, info.VirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            new ProcessOptions { Timeout = TimeSpan.FromMinutes(2) }, cancellationToken).ConfigureAwait(false);
        JsonObject layer = FuseExport.OverlayNode("layer", overlay, image, info.Format);
        FuseExport? export = await FuseExport.StartAsync(host, scratch, [layer], "layer", Path.Combine(scratch, "disk.raw"), cancellationToken).ConfigureAwait(false);
        try
        {
            var partition = await FindPartitionAsync(host, export.Mountpoint, image, cancellationToken).ConfigureAwait(false);
            if (partition is null)
            {
                return export;
            }
            await export.StopAsync(cancellationToken).ConfigureAwait(false);
            export = null;
            return await FuseExport.StartAsync(host, scratch, [FuseExport.OverlayNode("layer", overlay, image, info.Format), FuseExport.SliceNode("part", "layer", partition.Offset, partition.Length)],
                "part", Path.Combine(scratch, $"partition{partition.Number}.raw"), cancellationToken).ConfigureAwait(false);
        }
        catch when (export is not null)
        {
            await export.StopAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A raw copy of the layer's view, carved down to the partition with the filesystem on a partitioned disk.</summary>
    private static async Task<string> OpenRawCopyAsync(ILabHost host, string image, string scratch, CancellationToken cancellationToken)
    {
        var raw = Path.Combine(scratch, "view.raw");
        await host.RunAsync("qemu-img", ["convert", "-U", "-O", "raw", image, raw], new ProcessOptions { Timeout = TimeSpan.FromMinutes(20) }, cancellationToken).ConfigureAwait(false);
        await MakePrivateAsync(host, raw, cancellationToken).ConfigureAwait(false);
        // A partitioned disk (a user's VM): carve out the partition with the filesystem, as a file of its own.
        var partition = await FindPartitionAsync(host, raw, image, cancellationToken).ConfigureAwait(false);
        if (partition is null)
        {
            return raw;
        }
        var part = Path.Combine(scratch, $"partition{partition.Number}.raw");
        await CarveAsync(host, raw, partition, part, cancellationToken).ConfigureAwait(false);
        await MakePrivateAsync(host, part, cancellationToken).ConfigureAwait(false);
        await host.DeleteFileAsync(raw, cancellationToken).ConfigureAwait(false);
        return part;
    }

    private static async Task<DiskPartition?> FindPartitionAsync(ILabHost host, string disk, string image, CancellationToken cancellationToken)
    {
        await using Stream view = host.IsLocal ? File.OpenRead(disk) : await HostFileStream.OpenAsync(host, disk, cancellationToken).ConfigureAwait(false);
        return DiskLayout.FindExtFilesystem(view, Path.GetFileName(image));
    }

    private static async Task MakePrivateAsync(ILabHost host, string file, CancellationToken cancellationToken)
    {
        if (host.IsLocal)
        {
            File.SetUnixFileMode(file, Private.File);
        }
        else
        {
            await host.RunAsync("chmod", ["0600", file], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The partition as a file of its own: here a sparse copy of its byte range; on another host the same by
    /// <c>dd</c> there (<c>conv=sparse</c>), so the disk never crosses the network.
    /// </summary>
    private static async Task CarveAsync(ILabHost host, string disk, DiskPartition partition, string target, CancellationToken cancellationToken)
    {
        if (host.IsLocal)
        {
            await CarveAsync(disk, partition, target, cancellationToken).ConfigureAwait(false);
            return;
        }
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        await host.RunAsync("dd", [$"if={disk}", $"of={target}", "bs=1M", "iflag=skip_bytes,count_bytes", $"skip={partition.Offset.ToString(inv)}", $"count={partition.Length.ToString(inv)}", "conv=sparse", "status=none"],
            new ProcessOptions { Timeout = TimeSpan.FromMinutes(20) }, cancellationToken).ConfigureAwait(false);
    }

    private static async Task CarveAsync(string disk, DiskPartition partition, string target, CancellationToken cancellationToken)
    {
        await using var from = File.OpenRead(disk);
        await using var to = File.Create(target);
        from.Position = partition.Offset;
        var buffer = new byte[1 << 20];
        var left = partition.Length;
        while (left > 0)
        {
            var n = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }
            // Zeros are skipped, not written: the carved file stays as sparse as the disk.
            if (buffer.AsSpan(0, n).IndexOfAnyExcept((byte)0) < 0)
            {
                to.Seek(n, SeekOrigin.Current);
            }
            else
            {
                await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }
            left -= n;
        }
        to.SetLength(partition.Length - left);
    }

    /// <summary>
    /// A full read-only check of the filesystem (after the journal replay, as a mount would see it):
    /// <c>e2fsck -fn</c>. Clean means exit code 0; the summary is e2fsck's last line.
    /// </summary>
    public async Task<(bool Clean, string Summary)> CheckFilesystemAsync(CancellationToken cancellationToken = default)
    {
        var fsck = await _host.RunAsync("e2fsck", ["-fn", ViewFile], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
        static string? Last(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        // The summary ("N/M files, B/C blocks") is stdout's last line; the version banner goes to stderr.
        var last = Last(fsck.StandardOutput) ?? Last(fsck.StandardError) ?? "";
        return (fsck.ExitCode == 0, $"e2fsck -fn exit {fsck.ExitCode}: {last}");
    }

    public async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default)
    {
        var r = await DebugFsAsync($"stat {Quote(path)}", cancellationToken).ConfigureAwait(false);
        return !r.StandardError.Contains("File not found", StringComparison.Ordinal) && r.StandardOutput.Contains("Inode:", StringComparison.Ordinal);
    }

    public async Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        var output = Path.Combine(_scratch, "dump-" + Guid.NewGuid().ToString("N")[..8]);
        var r = await DebugFsAsync($"dump {Quote(path)} {Quote(output)}", cancellationToken).ConfigureAwait(false);
        if (!await _host.FileExistsAsync(output, cancellationToken).ConfigureAwait(false) || r.StandardError.Contains("File not found", StringComparison.Ordinal))
        {
            throw new LabException($"{path} not found in {Path.GetFileName(Image)}'s filesystem");
        }
        var bytes = await _host.ReadAllBytesAsync(output, cancellationToken).ConfigureAwait(false);
        await _host.DeleteFileAsync(output, cancellationToken).ConfigureAwait(false);
        return bytes;
    }

    /// <summary>Names in a directory (without . and ..).</summary>
    public async Task<IReadOnlyList<string>> ListAsync(string directory, CancellationToken cancellationToken = default)
    {
        var r = await DebugFsAsync($"ls -p {Quote(directory)}", cancellationToken).ConfigureAwait(false);
        // ls -p prints /inode/mode/uid/gid/name/size/ per entry.
        return r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('/'))
            .Where(f => f.Length >= 6 && f[5] is not "." and not "..")
            .Select(f => f[5])
            .ToArray();
    }

    private Task<ProcessResult> DebugFsAsync(string request, CancellationToken cancellationToken) =>
        _host.RunAsync("debugfs", ["-R", request, ViewFile], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(5) }, cancellationToken);

    /// <summary>debugfs parses its request line itself: quote paths and refuse characters it cannot take.</summary>
    private static string Quote(string path)
    {
        if (path.IndexOfAny(['"', '\n', '\r']) >= 0)
        {
            throw new LabUsageException($"path not readable offline (quote or newline in it): {path}");
        }
        return "\"" + path + "\"";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_export is not null)
            {
                await _export.StopAsync().ConfigureAwait(false);
            }
        }
        catch (LabException e)
        {
            LabWarnings.Raise($"could not stop the FUSE view {_export!.Mountpoint} on {_host.Name}: {e.Message}");
        }
        if (_host.IsLocal)
        {
            LabPaths.TryDeleteFolder(_scratch);
            return;
        }
        try
        {
            await _host.DeleteDirectoryAsync(_scratch, recursive: true).ConfigureAwait(false);
        }
        catch (LabException e)
        {
            LabWarnings.Raise($"could not delete the scratch folder {_scratch} on {_host.Name}: {e.Message}");
        }
    }
}

/// <summary>Files seen through the guest agent of a running guest.</summary>
public sealed class GuestFileView(IGuestAgent agent) : IFileView
{
    public async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        (await agent.ExecAsync(["test", "-e", path], cancellationToken: cancellationToken).ConfigureAwait(false)).ExitCode == 0;

    public Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default) => agent.ReadFileAsync(path, cancellationToken);
}
