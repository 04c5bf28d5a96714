using LabKernel.Images;

namespace LabKernel.Block;

/// <summary>
/// The block operations an experiment notebook needs, the same on both backends: QEMU driven directly over QMP
/// (<see cref="BlockLayer"/>, disks named by their root node, <c>disk0</c>) and a libvirt domain
/// (<see cref="Libvirt.LibvirtBlock"/>, disks named by their target, <c>vda</c>). Chains come back as
/// <see cref="LiveChain"/> (active first) from either, so a notebook's checks and plots do not care which one ran.
/// </summary>
public interface ILabBlock
{
    /// <summary><c>qemu</c> or <c>libvirt</c>.</summary>
    GuestBackend Backend { get; }

    /// <summary>The disk's chain as the running hypervisor sees it.</summary>
    Task<LiveChain> QueryChainAsync(string disk, CancellationToken cancellationToken = default);

    /// <summary>The live chain against the image headers (<c>qemu-img info --backing-chain -U</c>).</summary>
    Task<(LiveChain Live, BackingChain Headers, ChainAgreement Agreement)> CheckChainAgreementAsync(string disk, CancellationToken cancellationToken = default);

    /// <summary>A live external disk-only snapshot: the guest goes on writing into the new <paramref name="overlayFile"/>.</summary>
    Task<LiveChain> SnapshotAsync(string disk, string overlayFile, CancellationToken cancellationToken = default);

    /// <summary>Commits <paramref name="top"/> (an intermediate layer) into <paramref name="base"/> and waits for the job; returns the shortened chain.</summary>
    Task<LiveChain> CommitAsync(string disk, string top, string @base, CancellationToken cancellationToken = default);

    /// <summary>Pulls the data below the active layer (down to <paramref name="base"/>, or all of it) into it and waits; returns the chain.</summary>
    Task<LiveChain> StreamAsync(string disk, string? @base = null, CancellationToken cancellationToken = default);
}
