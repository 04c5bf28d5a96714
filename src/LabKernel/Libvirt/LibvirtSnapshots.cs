using System.Runtime.InteropServices;
using System.Text;
using System.Xml.Linq;
using LabKernel.Block;
using LabKernel.Images;

namespace LabKernel.Libvirt;

/// <summary>One disk of a snapshot request: the target and its new overlay file.</summary>
public sealed record DiskSnapshotSpec(string Disk, string OverlayFile, string Format = "qcow2");

/// <summary>One disk of a snapshot as its metadata records it.</summary>
/// <param name="Disk">The disk target.</param>
/// <param name="Kind">external, internal or no.</param>
/// <param name="File">The external overlay, for external disks.</param>
public sealed record SnapshotDiskInfo(string Disk, string Kind, string? File);

/// <summary>A snapshot's metadata (<c>virDomainSnapshotGetXMLDesc</c>).</summary>
/// <param name="Name">The snapshot name.</param>
/// <param name="Parent">The parent snapshot, null for a root.</param>
/// <param name="Created">creationTime.</param>
/// <param name="MemoryFile">The memory file of an external memory snapshot.</param>
/// <param name="Disks">Per-disk records.</param>
/// <param name="State">The domain state captured: running, shutoff, disk-snapshot, ...</param>
/// <param name="Memory">no, internal or external.</param>
public sealed record LibvirtSnapshotInfo(string Name, string? Parent, string State, DateTimeOffset Created, string Memory, string? MemoryFile, IReadOnlyList<SnapshotDiskInfo> Disks)
{
    /// <summary>Any part kept outside the original images (libvirt 9.0 cannot revert those).</summary>
    public bool IsExternal => Memory == "external" || Disks.Any(d => d.Kind == "external");

    internal static LibvirtSnapshotInfo Parse(string xml)
    {
        var r = XDocument.Parse(xml).Root ?? throw new FormatException("empty snapshot XML");
        var created = long.TryParse(r.Element("creationTime")?.Value, out var t) ? DateTimeOffset.FromUnixTimeSeconds(t) : DateTimeOffset.MinValue;
        var disks = (r.Element("disks")?.Elements("disk") ?? []).Select(d => new SnapshotDiskInfo(
            (string?)d.Attribute("name") ?? "", (string?)d.Attribute("snapshot") ?? "", (string?)d.Element("source")?.Attribute("file"))).ToArray();
        return new LibvirtSnapshotInfo(r.Element("name")?.Value ?? "", r.Element("parent")?.Element("name")?.Value, r.Element("state")?.Value ?? "",
            created, (string?)r.Element("memory")?.Attribute("snapshot") ?? "no", (string?)r.Element("memory")?.Attribute("file"), disks);
    }
}

/// <summary>What the lab's external revert did.</summary>
/// <param name="Disk">The disk target.</param>
/// <param name="NewOverlay">The fresh overlay the disk now runs on.</param>
/// <param name="RevertedTo">The layer it sits on.</param>
/// <param name="Abandoned">Layers that were above it (left on disk).</param>
public sealed record LibvirtExternalRevert(string Disk, string NewOverlay, string RevertedTo, IReadOnlyList<string> Abandoned);

/// <summary>
/// Snapshots of a libvirt domain: <c>virDomainSnapshotCreateXML</c> (disk-only atomic external, internal, memory),
/// <c>virDomainListAllSnapshots</c> (the tree), <c>virDomainSnapshotDelete</c> (metadata only or internal data),
/// <c>virDomainRevertToSnapshot</c> (internal), and the lab's own external revert for libvirt older than 9.9.
/// </summary>
public sealed class LibvirtSnapshots
{
    private readonly LibvirtDomain _domain;

    internal LibvirtSnapshots(LibvirtDomain domain) => _domain = domain;

    /// <summary>
    /// A live disk-only external snapshot of the listed disks (<c>DISK_ONLY | ATOMIC</c>, plus <c>NO_METADATA</c>
    /// when <paramref name="metadata"/> is false, <c>QUIESCE</c> to freeze guest filesystems through the agent).
    /// Disks not listed are left out (<c>snapshot='no'</c>). Existing overlay files are refused before libvirt is
    /// asked; libvirt creates the new ones, which the lab then counts as its own. Returns the snapshot's name.
    /// </summary>
    public async Task<string> CreateDiskOnlyAsync(string name, IReadOnlyList<DiskSnapshotSpec> disks, bool metadata = true, bool quiesce = false, string? description = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(disks);
        var all = await _domain.ListDisksAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var xml = SnapshotXml(name, description, null, disks, all.Select(d => d.Target));
        var flags = Vir.SnapshotCreateDiskOnly | Vir.SnapshotCreateAtomic | (metadata ? 0 : Vir.SnapshotCreateNoMetadata) | (quiesce ? Vir.SnapshotCreateQuiesce : 0);
        var text = $"virDomainSnapshotCreateXML({_domain.Name}, {name}: {string.Join(", ", disks.Select(d => $"{d.Disk}->{d.OverlayFile}"))}, DISK_ONLY|ATOMIC{(metadata ? "" : "|NO_METADATA")}{(quiesce ? "|QUIESCE" : "")})";
        await CreateAsync(xml, flags, text, disks.Select(d => d.OverlayFile).ToArray(), cancellationToken).ConfigureAwait(false);
        return name;
    }

    /// <summary>Disk-only external snapshot of one disk.</summary>
    public Task<string> CreateDiskOnlyAsync(string name, string disk, string overlayFile, bool metadata = true, CancellationToken cancellationToken = default) =>
        CreateDiskOnlyAsync(name, [new DiskSnapshotSpec(disk, overlayFile)], metadata, cancellationToken: cancellationToken);

    /// <summary>
    /// An internal snapshot (flags 0, no disk list): for a running domain libvirt saves memory and every qcow2 disk
    /// inside the active images (QEMU savevm); for a shut-off one, the disks only. Every writable qcow2 disk of the
    /// domain is written, so each one's active image must be the lab's or named in <paramref name="allowImages"/>;
    /// otherwise the call is refused before libvirt is asked (<see cref="Host.ForeignImageException"/>).
    /// </summary>
    public async Task<string> CreateInternalAsync(string name, string? description = null, IReadOnlyCollection<string>? allowImages = null, CancellationToken cancellationToken = default)
    {
        await GuardInternalAsync($"store internal snapshot '{name}' of domain '{_domain.Name}' inside its disks", allowImages, cancellationToken).ConfigureAwait(false);
        var xml = new XElement("domainsnapshot", new XElement("name", name), description is null ? null : new XElement("description", description)).ToString();
        await CreateAsync(xml, 0, $"virDomainSnapshotCreateXML({_domain.Name}, {name}: internal, 0)", [], cancellationToken).ConfigureAwait(false);
        return name;
    }

    /// <summary>
    /// The images an internal snapshot of the domain writes (taking, reverting or deleting one): the active image of
    /// every disk that is writable and qcow2, from the live definition (the persistent one when shut off).
    /// </summary>
    public async Task<IReadOnlyList<string>> ImagesAnInternalSnapshotWritesAsync(CancellationToken cancellationToken = default)
    {
        var off = await _domain.GetStateAsync(cancellationToken).ConfigureAwait(false) == DomainState.ShutOff;
        return ImagesAnInternalSnapshotWrites(await _domain.ListDisksAsync(inactive: off, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>As <see cref="ImagesAnInternalSnapshotWritesAsync"/>, from a list of disks.</summary>
    public static IReadOnlyList<string> ImagesAnInternalSnapshotWrites(IReadOnlyList<DomainDisk> disks)
    {
        ArgumentNullException.ThrowIfNull(disks);
        return [.. disks.Where(d => !d.ReadOnly && d.Source.Length > 0 && d.Format == "qcow2").Select(d => d.Source)];
    }

    private async Task GuardInternalAsync(string operation, IReadOnlyCollection<string>? allowImages, CancellationToken cancellationToken)
    {
        var images = await ImagesAnInternalSnapshotWritesAsync(cancellationToken).ConfigureAwait(false);
        Host.LabFiles.EnsureMayModifyAll(images, operation, allowImages);
    }

    /// <summary>
    /// A full-system external snapshot: guest memory to <paramref name="memoryFile"/> and the listed disks to new
    /// overlays, atomically (<c>ATOMIC</c>, plus <c>LIVE</c> to keep the guest running while memory is saved).
    /// </summary>
    public async Task<string> CreateMemoryAsync(string name, string memoryFile, IReadOnlyList<DiskSnapshotSpec> disks, bool live = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(disks);
        memoryFile = Path.GetFullPath(memoryFile);
        var all = await _domain.ListDisksAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var xml = SnapshotXml(name, null, memoryFile, disks, all.Select(d => d.Target));
        var flags = Vir.SnapshotCreateAtomic | (live ? Vir.SnapshotCreateLive : 0);
        await CreateAsync(xml, flags, $"virDomainSnapshotCreateXML({_domain.Name}, {name}: memory->{memoryFile}, {string.Join(", ", disks.Select(d => $"{d.Disk}->{d.OverlayFile}"))}, ATOMIC{(live ? "|LIVE" : "")})",
            [memoryFile, .. disks.Select(d => d.OverlayFile)], cancellationToken).ConfigureAwait(false);
        return name;
    }

    private async Task<string> CreateAsync(string xml, uint flags, string journal, IReadOnlyList<string> newFiles, CancellationToken cancellationToken)
    {
        foreach (var f in newFiles)
        {
            if (File.Exists(f))
            {
                throw new OverlayExistsException(Path.GetFullPath(f));
            }
        }
        await _domain.Run(() =>
        {
            using var h = LibvirtRuntime.CallHandle("virDomainSnapshotCreateXML", _domain.What, journal, () => LibvirtNative.virDomainSnapshotCreateXML(_domain.Handle, xml, flags));
        }, cancellationToken).ConfigureAwait(false);
        foreach (var f in newFiles)
        {
            _domain.RememberCreated(f);
        }
        return xml;
    }

    private static string SnapshotXml(string name, string? description, string? memoryFile, IReadOnlyList<DiskSnapshotSpec> disks, IEnumerable<string> allTargets)
    {
        var disksEl = new XElement("disks");
        foreach (var d in disks)
        {
            disksEl.Add(new XElement("disk", new XAttribute("name", d.Disk), new XAttribute("snapshot", "external"),
                new XElement("driver", new XAttribute("type", d.Format)),
                new XElement("source", new XAttribute("file", Path.GetFullPath(d.OverlayFile)))));
        }
        foreach (var t in allTargets.Where(t => disks.All(d => d.Disk != t)))
        {
            disksEl.Add(new XElement("disk", new XAttribute("name", t), new XAttribute("snapshot", "no")));
        }
        return new XElement("domainsnapshot",
            new XElement("name", name),
            description is null ? null : new XElement("description", description),
            memoryFile is null ? null : new XElement("memory", new XAttribute("snapshot", "external"), new XAttribute("file", memoryFile)),
            disksEl).ToString();
    }

    /// <summary><c>virDomainListAllSnapshots</c> and each one's XML, oldest first.</summary>
    public Task<IReadOnlyList<LibvirtSnapshotInfo>> ListAsync(CancellationToken cancellationToken = default) =>
        _domain.Run<IReadOnlyList<LibvirtSnapshotInfo>>(() =>
        {
            nint array = 0;
            var n = LibvirtRuntime.Call("virDomainListAllSnapshots", _domain.What, $"virDomainListAllSnapshots({_domain.Name}, 0)",
                () => LibvirtNative.virDomainListAllSnapshots(_domain.Handle, out array, 0));
            var handles = new List<SnapshotHandle>(n);
            try
            {
                for (var i = 0; i < n; i++)
                {
                    handles.Add(new SnapshotHandle(Marshal.ReadIntPtr(array, i * IntPtr.Size)));
                }
            }
            finally
            {
                LibvirtNative.free(array);
            }
            var list = new List<LibvirtSnapshotInfo>();
            foreach (var h in handles)
            {
                using (h)
                {
                    list.Add(LibvirtSnapshotInfo.Parse(LibvirtRuntime.CallString("virDomainSnapshotGetXMLDesc", _domain.What, $"virDomainSnapshotGetXMLDesc({_domain.Name}, snapshot)",
                        () => LibvirtNative.virDomainSnapshotGetXMLDesc(h, 0))));
                }
            }
            return list.OrderBy(s => s.Created).ThenBy(s => s.Name, StringComparer.Ordinal).ToArray();
        }, cancellationToken);

    /// <summary>The snapshot tree as text, like <c>virsh snapshot-list --tree</c>.</summary>
    public async Task<string> TreeAsync(CancellationToken cancellationToken = default) =>
        TreeText(await ListAsync(cancellationToken).ConfigureAwait(false));

    internal static string TreeText(IReadOnlyList<LibvirtSnapshotInfo> snaps)
    {
        var sb = new StringBuilder();
        void Walk(string? parent, string indent)
        {
            var children = snaps.Where(s => s.Parent == parent || (parent is null && s.Parent is not null && snaps.All(p => p.Name != s.Parent))).ToList();
            foreach (var c in children)
            {
                sb.Append(indent).Append(c.Name).Append(" (").Append(c.State).Append(c.IsExternal ? ", external" : ", internal").Append(")\n");
                Walk(c.Name, indent + "  ");
            }
        }
        Walk(null, "");
        return sb.ToString();
    }

    private SnapshotHandle Lookup(string name) =>
        LibvirtRuntime.CallHandle("virDomainSnapshotLookupByName", _domain.What, $"virDomainSnapshotLookupByName({_domain.Name}, {name})",
            () => LibvirtNative.virDomainSnapshotLookupByName(_domain.Handle, name, 0));

    /// <summary>
    /// Forgets (metadata only, newest first) every snapshot whose name is not in <paramref name="keep"/>: the records
    /// an experiment made since the names were captured. Returns the names dropped.
    /// </summary>
    public async Task<IReadOnlyList<string>> DropMetadataExceptAsync(IReadOnlyCollection<string> keep, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keep);
        var dropped = new List<string>();
        foreach (var s in (await ListAsync(cancellationToken).ConfigureAwait(false)).Reverse())
        {
            if (!keep.Contains(s.Name))
            {
                await DeleteMetadataAsync(s.Name, cancellationToken).ConfigureAwait(false);
                dropped.Add(s.Name);
            }
        }
        return dropped;
    }

    /// <summary><c>virDomainSnapshotDelete(METADATA_ONLY)</c>: forget the snapshot, keep every file.</summary>
    public Task DeleteMetadataAsync(string name, CancellationToken cancellationToken = default) =>
        _domain.Run(() =>
        {
            using var h = Lookup(name);
            LibvirtRuntime.Call("virDomainSnapshotDelete", _domain.What, $"virDomainSnapshotDelete({_domain.Name}/{name}, METADATA_ONLY)", () => LibvirtNative.virDomainSnapshotDelete(h, Vir.SnapshotDeleteMetadataOnly));
        }, cancellationToken);

    /// <summary>
    /// <c>virDomainSnapshotDelete(0)</c>: delete an internal snapshot's data and metadata (libvirt 9.0 refuses external
    /// ones). The data is removed from every writable qcow2 disk, so the same guard as for taking one applies.
    /// </summary>
    public async Task DeleteAsync(string name, IReadOnlyCollection<string>? allowImages = null, CancellationToken cancellationToken = default)
    {
        await GuardInternalAsync($"delete internal snapshot '{name}' of domain '{_domain.Name}' from its disks", allowImages, cancellationToken).ConfigureAwait(false);
        await _domain.Run(() =>
        {
            using var h = Lookup(name);
            LibvirtRuntime.Call("virDomainSnapshotDelete", _domain.What, $"virDomainSnapshotDelete({_domain.Name}/{name}, 0)", () => LibvirtNative.virDomainSnapshotDelete(h, 0));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>virDomainRevertToSnapshot</c> of an internal snapshot (RUNNING to leave the guest running). External
    /// snapshots are refused with a pointer to <see cref="RevertExternalAsync"/>.
    /// </summary>
    public async Task RevertAsync(string name, bool running = true, CancellationToken cancellationToken = default) =>
        await RevertAsync(name, running, askLibvirtForExternal: false, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// As <see cref="RevertAsync(string, bool, CancellationToken)"/>; with <paramref name="askLibvirtForExternal"/>
    /// an external snapshot goes to libvirt as well, so its own answer (a <see cref="LibvirtException"/> on the
    /// versions that cannot revert external snapshots) is what the caller sees.
    /// </summary>
    public async Task RevertAsync(string name, bool running, bool askLibvirtForExternal, CancellationToken cancellationToken = default)
    {
        var info = (await ListAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(s => s.Name == name)
            ?? throw new LabUsageException($"domain '{_domain.Name}' has no snapshot '{name}'");
        if (info.IsExternal && !askLibvirtForExternal)
        {
            throw new LabUsageException($"snapshot '{name}' of domain '{_domain.Name}' is external: libvirt {_domain.Connection.GetLibraryVersion()} cannot revert it; use Snapshots.RevertExternalAsync");
        }
        if (!info.IsExternal)
        {
            // Reverting an internal snapshot rewrites every disk that holds it.
            await GuardInternalAsync($"revert domain '{_domain.Name}' to internal snapshot '{name}' (it rewrites its disks)", null, cancellationToken).ConfigureAwait(false);
        }
        await _domain.Run(() =>
        {
            using var h = Lookup(name);
            LibvirtRuntime.Call("virDomainRevertToSnapshot", _domain.What, $"virDomainRevertToSnapshot({_domain.Name}/{name}, {(running ? "RUNNING" : "0")})",
                () => LibvirtNative.virDomainRevertToSnapshot(h, running ? Vir.SnapshotRevertRunning : 0));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The lab's external revert: destroy the domain, create <paramref name="newOverlay"/> on
    /// <paramref name="layer"/> (a file of the disk's chain), point the persistent disk at it, start the domain and
    /// wait for its agent. The layers above are abandoned, not deleted.
    /// </summary>
    public async Task<LibvirtExternalRevert> RevertExternalAsync(string disk, string layer, string newOverlay, TimeSpan? agentTimeout = null, CancellationToken cancellationToken = default)
    {
        LibvirtConnection.RequireThisHost(_domain.Connection.Uri, $"revert {_domain.Name} {disk} to an external snapshot (qemu-img create of a new overlay)");
        newOverlay = Path.GetFullPath(newOverlay);
        if (File.Exists(newOverlay))
        {
            throw new OverlayExistsException(newOverlay);
        }
        var chain = await _domain.Block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var depth = chain.Chain.ToList().FindIndex(f => BackingChain.SameFile(f, layer));
        if (depth < 0)
        {
            throw new LabUsageException($"{layer} is not in the chain of {_domain.Name} {disk} ({chain.ToText()})");
        }
        var target = chain.Chain[depth];
        var entry = Journal.LabJournal.Current.Begin("libvirt", $"revert {_domain.Name} {disk} to {Path.GetFileName(target)} via {newOverlay} (destroy, qemu-img create, define, start)");
        try
        {
            await _domain.DestroyAsync(cancellationToken).ConfigureAwait(false);
            var format = (await QemuImg.Local.InfoAsync(target, cancellationToken: cancellationToken).ConfigureAwait(false)).Format;
            await QemuImg.Local.CreateAsync(newOverlay, "qcow2", null, new CreateOptions { BackingFile = target, BackingFormat = format }, cancellationToken).ConfigureAwait(false);
            _domain.RememberCreated(newOverlay);
            await _domain.SetPersistentDiskSourceAsync(disk, newOverlay, cancellationToken).ConfigureAwait(false);
            await _domain.StartAsync(cancellationToken).ConfigureAwait(false);
            await _domain.WaitForAgentAsync(agentTimeout ?? TimeSpan.FromMinutes(3), cancellationToken).ConfigureAwait(false);
            var result = new LibvirtExternalRevert(disk, newOverlay, target, chain.Chain.Take(depth).ToArray());
            entry.Complete($"running on {Path.GetFileName(newOverlay)} over {Path.GetFileName(target)}; abandoned {result.Abandoned.Count} layer(s)");
            return result;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }
}
