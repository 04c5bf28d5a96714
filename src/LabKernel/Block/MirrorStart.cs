using System.Security;
using LabKernel.Host;
using LabKernel.Images;

namespace LabKernel.Block;

/// <summary>
/// How the lab starts a mirror, on both backends, in this one file: which target is accepted and recorded as the
/// lab's, what the target is backed by, and what is sent: QEMU's <c>drive-mirror</c>/<c>blockdev-mirror</c> and its
/// arguments (<see cref="ChainJobs.StartMirrorAsync"/> sends them), libvirt's <c>virDomainBlockCopy</c> with its
/// destination and flags (<c>LibvirtBlock.StartCopyAsync</c> calls it). The backends keep only the job they
/// get back. <see cref="ILabBlock.StartMirrorAsync"/>'s <c>shallow</c> maps onto each backend's options here too
/// (<see cref="ForQemu"/>, <see cref="ForLibvirt"/>).
/// </summary>
/// <remarks>
/// The target rule is the same on both: a new file is refused when it exists (<see cref="OverlayExistsException"/>,
/// before anything is sent) and recorded in <see cref="LabFiles"/> before the start, so a failed start leaves a file
/// the lab may delete. A shallow copy's target is backed by the active layer's backing file (QEMU: <c>sync=top</c>,
/// <c>mode=absolute-paths</c>, QEMU makes the file; libvirt: SHALLOW, the lab makes it with qemu-img for REUSE_EXT);
/// a full copy's is a standalone image of the disk's size.
/// </remarks>
internal static class MirrorStart
{
    /// <summary><see cref="ILabBlock.StartMirrorAsync"/> on QEMU: a new file, <c>sync=top</c> when shallow, else <c>full</c>.</summary>
    public static (MirrorTarget Target, MirrorOptions Options) ForQemu(string target, bool shallow) =>
        (new MirrorTarget.NewFile(target), new MirrorOptions { Sync = shallow ? MirrorSync.Top : MirrorSync.Full });

    /// <summary><see cref="ILabBlock.StartMirrorAsync"/> on libvirt: SHALLOW or not, onto a file the lab makes (REUSE_EXT), TRANSIENT_JOB.</summary>
    public static LibvirtCopyOptions ForLibvirt(bool shallow) => new() { Shallow = shallow };

    /// <summary>A new target's full path on <paramref name="host"/>, refused when it exists.</summary>
    public static async Task<string> NewTargetAsync(ILabHost host, string path, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        if (await host.FileExistsAsync(full, cancellationToken).ConfigureAwait(false))
        {
            throw new OverlayExistsException(full);
        }
        return full;
    }

    /// <summary>What QEMU is sent to start a mirror: the command, its arguments, and the journal line.</summary>
    public sealed record QmpStart(string Command, MirrorArguments Arguments, string Describe);

    /// <summary>
    /// QEMU's mirror start: <c>drive-mirror</c> onto a new file QEMU makes (<c>mode=absolute-paths</c>: with
    /// <c>sync=top</c> backed by the active layer's backing file) or onto an existing one (<c>mode=existing</c>, which
    /// must exist), <c>blockdev-mirror</c> onto a node the monitor opened; every option set in
    /// <paramref name="options"/> under QEMU's name, none other.
    /// </summary>
    public static async Task<QmpStart> QmpAsync(ILabHost host, string disk, LiveChain chain, MirrorTarget target, MirrorOptions options, string jobId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        var sync = options.Sync.ToString().ToLowerInvariant();
        var args = new MirrorArguments(jobId, chain.Active.NodeName, Target: "", sync, AutoFinalize: options.AutoFinalize)
        {
            Granularity = options.Granularity,
            BufSize = options.BufferSize,
            Speed = options.Speed,
            OnSourceError = options.OnSourceError?.ToString().ToLowerInvariant(),
            OnTargetError = options.OnTargetError?.ToString().ToLowerInvariant(),
            CopyMode = options.CopyMode switch
            {
                null => null,
                MirrorCopyMode.Background => "background",
                MirrorCopyMode.WriteBlocking => "write-blocking",
                _ => throw new LabUsageException($"unknown mirror copy mode {options.CopyMode}"),
            },
        };
        switch (target)
        {
            case MirrorTarget.NewFile nf:
                var path = await NewTargetAsync(host, nf.Path, cancellationToken).ConfigureAwait(false);
                LabFiles.MarkCreated(path, host);
                return new("drive-mirror", args with { Target = path, Format = nf.Format, Mode = "absolute-paths" }, $"mirror {disk} -> new {path} sync={sync}");
            case MirrorTarget.ExistingFile ef:
                var existing = Path.GetFullPath(ef.Path);
                if (!await host.FileExistsAsync(existing, cancellationToken).ConfigureAwait(false))
                {
                    throw new OverlayMissingException(existing, "existing mirror target");
                }
                return new("drive-mirror", args with { Target = existing, Format = ef.Format, Mode = "existing" }, $"mirror {disk} -> existing {existing} sync={sync}");
            case MirrorTarget.Node n:
                return new("blockdev-mirror", args with { Target = n.NodeName }, $"mirror {disk} -> node {n.NodeName} sync={sync}");
            default:
                throw new ArgumentOutOfRangeException(nameof(target));
        }
    }

    /// <summary>What libvirt is called with to start a copy: the destination's XML, the flags and their names.</summary>
    public sealed record LibvirtStart(string Destination, string Xml, uint Flags, string FlagNames);

    /// <summary>
    /// libvirt's mirror start (<c>virDomainBlockCopy</c>): unless the caller made it
    /// (<see cref="LibvirtCopyOptions.DestinationExists"/>), the destination is new, and with REUSE_EXT the lab makes
    /// it on the hypervisor (<paramref name="host"/>, asked only then): of the active layer's (<paramref name="source"/>)
    /// size, and when shallow backed by its backing file (<paramref name="chain"/>'s second layer), as QEMU makes its own.
    /// </summary>
    public static async Task<LibvirtStart> LibvirtAsync(Func<CancellationToken, Task<ILabHost>> host, string source, IReadOnlyList<string> chain, string destination, LibvirtCopyOptions options, CancellationToken cancellationToken)
    {
        destination = Path.GetFullPath(destination);
        if (!options.DestinationExists)
        {
            var files = await host(cancellationToken).ConfigureAwait(false);
            destination = await NewTargetAsync(files, destination, cancellationToken).ConfigureAwait(false);
            if (options.ReuseExternal)
            {
                var qemuImg = QemuImg.On(files);
                var info = await qemuImg.InfoAsync(source, cancellationToken: cancellationToken).ConfigureAwait(false);
                var create = options.Shallow && chain.Count > 1
                    ? new CreateOptions { BackingFile = chain[1], BackingFormat = (await qemuImg.InfoAsync(chain[1], cancellationToken: cancellationToken).ConfigureAwait(false)).Format }
                    : null;
                await qemuImg.CreateAsync(destination, options.Format, info.VirtualSize, create, cancellationToken).ConfigureAwait(false);
            }
            LabFiles.MarkCreated(destination, files);
        }
        var flags = (options.Shallow ? LibvirtCopyFlags.Shallow : 0) | (options.ReuseExternal ? LibvirtCopyFlags.ReuseExt : 0) | (options.TransientJob ? LibvirtCopyFlags.TransientJob : 0);
        var names = string.Join('|', new[] { options.Shallow ? "SHALLOW" : null, options.ReuseExternal ? "REUSE_EXT" : null, options.TransientJob ? "TRANSIENT_JOB" : null }.Where(f => f is not null));
        var xml = $"<disk type='file'><driver type='{SecurityElement.Escape(options.Format)}'/><source file='{SecurityElement.Escape(destination)}'/></disk>";
        return new(destination, xml, (uint)flags, names.Length == 0 ? "0" : names);
    }
}

/// <summary>
/// <c>drive-mirror</c>'s and <c>blockdev-mirror</c>'s arguments: a file target carries its <c>format</c> and
/// <c>mode</c>, a node target neither (jobs are dismissed by the lab, so <c>auto-dismiss</c> is off).
/// </summary>
internal sealed record MirrorArguments(string JobId, string Device, string Target, string Sync, bool AutoFinalize)
{
    public bool AutoDismiss => false;
    public string? Format { get; init; }
    public string? Mode { get; init; }
    public int? Granularity { get; init; }
    public long? BufSize { get; init; }
    public long? Speed { get; init; }
    public string? OnSourceError { get; init; }
    public string? OnTargetError { get; init; }
    public string? CopyMode { get; init; }
}

/// <summary>How <c>LibvirtBlock.StartCopyAsync</c> (<see cref="MirrorStart.LibvirtAsync"/>) runs.</summary>
public sealed record LibvirtCopyOptions
{
    /// <summary>SHALLOW: copy only the active layer; the destination shares the source's backing chain.</summary>
    public bool Shallow { get; init; } = true;

    /// <summary>
    /// REUSE_EXT: the destination exists. With <see cref="Shallow"/> the lab creates it itself (qemu-img create on the
    /// active layer's backing file) unless <see cref="DestinationExists"/>.
    /// </summary>
    public bool ReuseExternal { get; init; } = true;

    /// <summary>The caller made the destination: the lab neither creates it nor refuses it.</summary>
    public bool DestinationExists { get; init; }

    /// <summary>TRANSIENT_JOB: lets persistent domains copy (libvirt refuses otherwise); the persistent XML is not updated by a pivot.</summary>
    public bool TransientJob { get; init; } = true;

    public string Format { get; init; } = "qcow2";
}

/// <summary><c>virDomainBlockCopyFlags</c>, the values libvirt's ABI gives them.</summary>
[Flags]
internal enum LibvirtCopyFlags : uint
{
    Shallow = 1,
    ReuseExt = 2,
    TransientJob = 4,
}
