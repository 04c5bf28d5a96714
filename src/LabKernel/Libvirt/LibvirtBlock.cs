using LabKernel.Images;
using LabKernel.Jobs;

namespace LabKernel.Libvirt;

/// <summary>How <see cref="LibvirtBlock.StartCommitAsync"/> runs.</summary>
public sealed record LibvirtCommitOptions
{
    /// <summary>Bandwidth limit in bytes/s (BANDWIDTH_BYTES); null for none.</summary>
    public long? Speed { get; init; }

    /// <summary>For an active commit in <see cref="LibvirtBlock.CommitAsync"/>: pivot (Complete), keep the overlay (Cancel).</summary>
    public ReadyAction OnReady { get; init; } = ReadyAction.Complete;

    /// <summary>SHALLOW: base is the top's immediate backing file.</summary>
    public bool Shallow { get; init; }
}

/// <summary>A check that the domain XML and qemu-img see the same chain.</summary>
public sealed record LibvirtChainCheck(DomainDisk Xml, BackingChain Headers, ChainAgreement Agreement);

/// <summary>
/// A domain's block layer through libvirt: chains from the domain XML, blockcommit, blockpull, blockcopy and
/// block job control. Disks are named by their target (<c>vda</c>). Method names follow the QEMU backend's
/// <see cref="Block.BlockLayer"/> (QueryChainAsync, CheckChainAgreementAsync, StartCommitAsync/CommitAsync,
/// StartStreamAsync/StreamAsync), so a notebook can switch backends.
/// </summary>
public sealed class LibvirtBlock : Block.ILabBlock
{
    private readonly LibvirtDomain _domain;

    internal LibvirtBlock(LibvirtDomain domain) => _domain = domain;

    /// <summary>Default limit for the convenience methods that drive a job to its end.</summary>
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The disk's chain, active first: from the live XML's <c>source</c> and <c>backingStore</c> elements; for a
    /// shut-off domain (whose XML has no backingStore) the rest of the chain is read from the image headers.
    /// </summary>
    public async Task<DomainDisk> QueryChainAsync(string disk, CancellationToken cancellationToken = default)
    {
        var running = await _domain.GetStateAsync(cancellationToken).ConfigureAwait(false) != DomainState.ShutOff;
        var disks = await _domain.ListDisksAsync(inactive: !running, cancellationToken).ConfigureAwait(false);
        var d = disks.FirstOrDefault(x => x.Target == disk)
            ?? throw new LabUsageException($"domain '{_domain.Name}' has no disk {disk} (it has {string.Join(", ", disks.Select(x => x.Target))})");
        if (!running && d.Chain.Count == 1)
        {
            var host = await _domain.Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
            var headers = await QemuImg.On(host).GetBackingChainAsync(d.Source, cancellationToken: cancellationToken).ConfigureAwait(false);
            d = d with { Chain = headers.Layers.Select(l => l.Filename).ToArray() };
        }
        return d;
    }

    /// <summary>The chain in the domain XML against <c>qemu-img info --backing-chain -U</c> of its active layer.</summary>
    public async Task<LibvirtChainCheck> CheckChainAgreementAsync(string disk, CancellationToken cancellationToken = default)
    {
        var host = await _domain.Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
        var d = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var headers = await QemuImg.On(host).GetBackingChainAsync(d.Source, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new LibvirtChainCheck(d, headers, headers.Compare(d.Chain));
    }

    /// <summary>
    /// <c>virDomainBlockCommit</c>: commits <paramref name="top"/> (a file in the chain; null = the active layer,
    /// which makes it an ACTIVE commit) into <paramref name="base"/> (null = libvirt's default, the bottom of the
    /// chain; a read-only base such as the lab's cached image is refused). An intermediate commit ends by itself;
    /// an active one becomes READY and waits for <see cref="LibvirtBlockJob.PivotAsync"/> or
    /// <see cref="LibvirtBlockJob.AbortAsync"/> (keep the overlay).
    /// </summary>
    public async Task<LibvirtBlockJob> StartCommitAsync(string disk, string? top = null, string? @base = null, LibvirtCommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LibvirtCommitOptions();
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var active = top is null || BackingChain.SameFile(top, chain.Source);
        // libvirt's default base is the bottom of the chain, which for the lab is the shared, read-only cached image:
        // committing into it would change every guest's base (QEMU refuses it anyway with a lock error).
        var effectiveBase = @base ?? (options.Shallow ? NextBelow(chain, top ?? chain.Source) : chain.Chain[^1]);
        var host = await _domain.Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
        if (@base is null && effectiveBase is not null)
        {
            // An implicit base is the bottom of the chain (or the layer below the top): often a researcher's own image.
            Host.LabFiles.EnsureMayModify(effectiveBase, $"commit {disk} of domain '{_domain.Name}' into {effectiveBase} (a base the caller did not name)", host: host);
        }
        if (effectiveBase is not null && await IsReadOnlyFileAsync(host, effectiveBase, cancellationToken).ConfigureAwait(false))
        {
            throw new LabUsageException($"refusing to commit {disk} of domain '{_domain.Name}' into read-only {effectiveBase}; pass the base layer to commit into (chain {chain.ToText()})");
        }
        var flags = (active ? Vir.CommitActive : 0) | (options.Shallow ? Vir.CommitShallow : 0) | (options.Speed is null ? 0 : Vir.CommitBandwidthBytes);
        var job = new LibvirtBlockJob(_domain, disk, active ? "active-commit" : "commit");
        var flagText = string.Join('|', new[] { active ? "ACTIVE" : null, options.Shallow ? "SHALLOW" : null, options.Speed is null ? null : "BANDWIDTH_BYTES" }.Where(f => f is not null));
        try
        {
            await _domain.Run(() => LibvirtRuntime.Call("virDomainBlockCommit", _domain.What,
                $"virDomainBlockCommit({_domain.Name}, disk={disk}, base={@base ?? "NULL"}, top={top ?? "NULL"}, bandwidth={options.Speed ?? 0}, flags={(flagText.Length == 0 ? "0" : flagText)})",
                () => LibvirtNative.virDomainBlockCommit(_domain.Handle, disk, @base, active ? null : top, (ulong)(options.Speed ?? 0), flags)), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await job.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return job;
    }

    /// <summary>
    /// Runs a commit to its end: waits for an intermediate commit; for an active commit waits for READY, then
    /// pivots (<see cref="ReadyAction.Complete"/>) or aborts to keep the overlay (<see cref="ReadyAction.Cancel"/>).
    /// Returns the chain afterwards.
    /// </summary>
    public async Task<DomainDisk> CommitAsync(string disk, string? top = null, string? @base = null, LibvirtCommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LibvirtCommitOptions();
        await using var job = await StartCommitAsync(disk, top, @base, options, cancellationToken).ConfigureAwait(false);
        if (job.Type == "active-commit")
        {
            await job.WaitForReadyAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
            switch (options.OnReady)
            {
                case ReadyAction.Complete:
                    await job.PivotAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case ReadyAction.Cancel:
                    await job.AbortAsync(cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    throw new LabUsageException("CommitAsync drives the job to its end: OnReady must be Complete or Cancel (use StartCommitAsync to wait)");
            }
        }
        await job.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
        return await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// blockpull: <c>virDomainBlockPull</c> (whole chain into the active layer) or, with <paramref name="base"/>,
    /// <c>virDomainBlockRebase(base)</c> (only the layers above base; the active layer then backs onto base).
    /// </summary>
    public async Task<LibvirtBlockJob> StartStreamAsync(string disk, string? @base = null, long? speed = null, CancellationToken cancellationToken = default)
    {
        var job = new LibvirtBlockJob(_domain, disk, "pull");
        try
        {
            if (@base is null)
            {
                await _domain.Run(() => LibvirtRuntime.Call("virDomainBlockPull", _domain.What, $"virDomainBlockPull({_domain.Name}, disk={disk}, bandwidth={speed ?? 0}, flags={(speed is null ? "0" : "BANDWIDTH_BYTES")})",
                    () => LibvirtNative.virDomainBlockPull(_domain.Handle, disk, (ulong)(speed ?? 0), speed is null ? 0 : Vir.PullBandwidthBytes)), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _domain.Run(() => LibvirtRuntime.Call("virDomainBlockRebase", _domain.What, $"virDomainBlockRebase({_domain.Name}, disk={disk}, base={@base}, bandwidth={speed ?? 0}, flags={(speed is null ? "0" : "BANDWIDTH_BYTES")})",
                    () => LibvirtNative.virDomainBlockRebase(_domain.Handle, disk, @base, (ulong)(speed ?? 0), speed is null ? 0 : Vir.RebaseBandwidthBytes)), cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await job.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return job;
    }

    /// <summary>Runs a pull to its end and returns the chain afterwards.</summary>
    public async Task<DomainDisk> StreamAsync(string disk, string? @base = null, long? speed = null, CancellationToken cancellationToken = default)
    {
        await using var job = await StartStreamAsync(disk, @base, speed, cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
        return await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// blockcopy (<c>virDomainBlockCopy</c>) of disk to <paramref name="destination"/>. By default SHALLOW |
    /// REUSE_EXT | TRANSIENT_JOB: the lab creates the destination on the active layer's backing file (refusing an
    /// existing file), so persistent domains can copy. The job becomes READY; then pivot or abort. What is called is
    /// <see cref="Block.MirrorStart.LibvirtAsync"/>'s, beside QEMU's mirror start.
    /// </summary>
    public async Task<LibvirtBlockJob> StartCopyAsync(string disk, string destination, Block.LibvirtCopyOptions? options = null, CancellationToken cancellationToken = default)
    {
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        // The hypervisor's files are reached only when the lab makes the destination.
        var start = await Block.MirrorStart.LibvirtAsync(_domain.Connection.GetHostAsync, chain.Source, chain.Chain, destination, options ?? new Block.LibvirtCopyOptions(), cancellationToken).ConfigureAwait(false);
        var job = new LibvirtBlockJob(_domain, disk, "copy");
        try
        {
            await _domain.Run(() => LibvirtRuntime.Call("virDomainBlockCopy", _domain.What, $"virDomainBlockCopy({_domain.Name}, disk={disk}, dest={start.Destination}, flags={start.FlagNames})",
                () => LibvirtNative.virDomainBlockCopy(_domain.Handle, disk, start.Xml, 0, 0, start.Flags)), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await job.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return job;
    }

    private static string? NextBelow(DomainDisk chain, string layer)
    {
        var i = chain.Chain.ToList().FindIndex(f => BackingChain.SameFile(f, layer));
        return i >= 0 && i + 1 < chain.Chain.Count ? chain.Chain[i + 1] : null;
    }

    /// <summary>
    /// Whether <paramref name="path"/> on <paramref name="host"/> exists with its owner's write bit clear (as the
    /// lab's cached guest image is): a commit into it is refused before libvirt is asked.
    /// </summary>
    private static async Task<bool> IsReadOnlyFileAsync(Host.ILabHost host, string path, CancellationToken cancellationToken)
    {
        if (host.IsLocal)
        {
            return File.Exists(path) && (File.GetUnixFileMode(path) & UnixFileMode.UserWrite) == 0;
        }
        var r = await host.RunAsync("stat", ["-L", "-c", "%a", path], new Processes.ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        return r.Succeeded && int.TryParse(r.StandardOutput.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var octal)
            && (octal / 100 % 10 & 2) == 0;
    }

    /// <summary><c>virDomainGetBlockJobInfo</c>: the disk's job progress, null when it has none.</summary>
    public Task<BlockJobProgress?> GetJobInfoAsync(string disk, CancellationToken cancellationToken = default) =>
        _domain.Run(() =>
        {
            LibvirtNative.BlockJobInfo info = default;
            var r = LibvirtRuntime.Call("virDomainGetBlockJobInfo", _domain.What, $"virDomainGetBlockJobInfo({_domain.Name}, {disk})",
                () => LibvirtNative.virDomainGetBlockJobInfo(_domain.Handle, disk, out info, 0));
            return r == 0 ? null : new BlockJobProgress(disk, info.Cur == info.End && info.End > 0 ? JobStatus.Ready : JobStatus.Running,
                (long)info.Cur, (long)info.End, _domain.Connection.Time.GetUtcNow(), null, $"type {((LibvirtBlockJobType)info.Type).ToString().ToLowerInvariant()}");
        }, cancellationToken);

    /// <summary><c>virDomainBlockJobAbort</c> (synchronous), with PIVOT to switch to the copy / commit base.</summary>
    public Task AbortJobAsync(string disk, bool pivot = false, CancellationToken cancellationToken = default) =>
        _domain.Run(() => LibvirtRuntime.Call("virDomainBlockJobAbort", _domain.What, $"virDomainBlockJobAbort({_domain.Name}, {disk}, {(pivot ? "PIVOT" : "0")})",
            () => LibvirtNative.virDomainBlockJobAbort(_domain.Handle, disk, pivot ? Vir.JobAbortPivot : 0)), cancellationToken);

    // ---------------------------------------------------------------- the backend-neutral view (ILabBlock)

    GuestBackend Block.ILabBlock.Backend => GuestBackend.Libvirt;

    /// <summary>
    /// What both backends have (<see cref="Block.LabBlockCapabilities.Common"/>), and backups once the domain's monitor
    /// passthrough is given (<see cref="UseMonitor"/>): libvirt's block API has no node mirror, HMP, job pause or error
    /// policy; the passthrough (<c>ILabGuest.OpenMonitorAsync</c>) has them.
    /// </summary>
    public Block.LabBlockCapabilities Capabilities => _monitor is null ? Block.LabBlockCapabilities.Common : Block.LabBlockCapabilities.Common with { Backup = true };

    private Func<CancellationToken, Task<Block.BlockLayer>>? _monitor;

    /// <summary>
    /// The domain's QMP monitor passthrough (opened once, by its guest), through which this block layer runs what
    /// libvirt's block API lacks and QMP has: the dirty-bitmap backups of <see cref="Block.ILabBlock"/>.
    /// </summary>
    public void UseMonitor(Func<CancellationToken, Task<Block.BlockLayer>> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        _monitor = open;
    }

    private Task<Block.BlockLayer> MonitorAsync(string what, CancellationToken cancellationToken) =>
        _monitor?.Invoke(cancellationToken)
        ?? throw new LabUsageException($"{what} on domain '{_domain.Name}' goes through its QMP monitor passthrough, which this block layer was not given (start the domain through LabGuests)");

    async Task<Block.BackupResult> Block.ILabBlock.FullBackupAsync(string disk, string targetFile, Block.BackupOptions? options, CancellationToken cancellationToken) =>
        await Block.Backups.FullBackupAsync(await MonitorAsync("a backup", cancellationToken).ConfigureAwait(false), disk, targetFile, options, cancellationToken).ConfigureAwait(false);

    async Task<Block.BackupResult> Block.ILabBlock.IncrementalBackupAsync(string disk, string targetFile, Block.BackupResult previous, Block.BackupOptions options, CancellationToken cancellationToken) =>
        await Block.Backups.IncrementalBackupAsync(await MonitorAsync("a backup", cancellationToken).ConfigureAwait(false), disk, targetFile, previous, options, cancellationToken).ConfigureAwait(false);

    async Task<IReadOnlyList<Block.DirtyBitmap>> Block.ILabBlock.QueryBitmapsAsync(string disk, CancellationToken cancellationToken) =>
        await Block.Backups.QueryBitmapsAsync(await MonitorAsync("reading dirty bitmaps", cancellationToken).ConfigureAwait(false), disk, cancellationToken).ConfigureAwait(false);

    async Task<ILabJob> Block.ILabBlock.StartCommitAsync(string disk, string? top, string? @base, CancellationToken cancellationToken) =>
        await StartCommitAsync(disk, top is null ? null : Path.GetFullPath(top), @base is null ? null : Path.GetFullPath(@base), cancellationToken: cancellationToken).ConfigureAwait(false);

    async Task<ILabJob> Block.ILabBlock.StartStreamAsync(string disk, string? @base, CancellationToken cancellationToken) =>
        await StartStreamAsync(disk, @base is null ? null : Path.GetFullPath(@base), cancellationToken: cancellationToken).ConfigureAwait(false);

    /// <summary>blockcopy onto a new file the lab creates (<see cref="Block.LibvirtCopyOptions"/>' defaults), SHALLOW when <paramref name="shallow"/>.</summary>
    async Task<ILabJob> Block.ILabBlock.StartMirrorAsync(string disk, string target, bool shallow, CancellationToken cancellationToken) =>
        await StartCopyAsync(disk, target, Block.MirrorStart.ForLibvirt(shallow), cancellationToken).ConfigureAwait(false);

    async Task<Block.LiveChain> Block.ILabBlock.QueryChainAsync(string disk, CancellationToken cancellationToken) =>
        (await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).ToLiveChain();

    async Task<(Block.LiveChain Live, BackingChain Headers, ChainAgreement Agreement)> Block.ILabBlock.CheckChainAgreementAsync(string disk, CancellationToken cancellationToken)
    {
        var c = await CheckChainAgreementAsync(disk, cancellationToken).ConfigureAwait(false);
        return (c.Xml.ToLiveChain(), c.Headers, c.Agreement);
    }

    /// <summary>
    /// As <c>virsh snapshot-create-as --disk-only</c> in the documents: a disk-only, atomic snapshot with metadata,
    /// named after the overlay file, of this one disk.
    /// </summary>
    async Task<Block.LiveChain> Block.ILabBlock.SnapshotAsync(string disk, string overlayFile, CancellationToken cancellationToken)
    {
        var name = $"lab-{Path.GetFileNameWithoutExtension(overlayFile)}-{Guid.NewGuid().ToString("N")[..6]}";
        await _domain.Snapshots.CreateDiskOnlyAsync(name, disk, Path.GetFullPath(overlayFile), metadata: true, cancellationToken).ConfigureAwait(false);
        return (await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).ToLiveChain();
    }

    async Task<Block.LiveChain> Block.ILabBlock.CommitAsync(string disk, string top, string @base, CancellationToken cancellationToken) =>
        (await CommitAsync(disk, Path.GetFullPath(top), Path.GetFullPath(@base), cancellationToken: cancellationToken).ConfigureAwait(false)).ToLiveChain();

    async Task<Block.LiveChain> Block.ILabBlock.StreamAsync(string disk, string? @base, CancellationToken cancellationToken) =>
        (await StreamAsync(disk, @base is null ? null : Path.GetFullPath(@base), cancellationToken: cancellationToken).ConfigureAwait(false)).ToLiveChain();
}
