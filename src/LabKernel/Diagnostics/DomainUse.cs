using LabKernel.Backends;
using LabKernel.Host;
using LabKernel.Libvirt;

namespace LabKernel.Diagnostics;

/// <summary>
/// The domains of one libvirt connection, read once, as `lab clean` needs them: which files each one's definition
/// names (running and persistent, every layer), so that no run folder a definition still names is removed, and
/// which of those folders hold the lab's <see cref="TakeOverRecord"/> for a shut-off domain it can hand back.
/// </summary>
internal sealed class DomainUse
{
    private readonly List<(string Domain, DomainState State, IReadOnlyList<DomainDisk> Persistent, List<string> Files)> _domains = [];

    private DomainUse()
    {
    }

    /// <summary>Reads every domain of <paramref name="libvirtUri"/>.</summary>
    public static async Task<DomainUse> ReadAsync(string libvirtUri, CancellationToken cancellationToken)
    {
        var use = new DomainUse();
        await using var connection = await LibvirtConnection.OpenAsync(libvirtUri, cancellationToken).ConfigureAwait(false);
        foreach (var name in await connection.ListDomainNamesAsync(cancellationToken).ConfigureAwait(false))
        {
            using var domain = await connection.LookupDomainAsync(name, cancellationToken).ConfigureAwait(false);
            var (persistent, files) = await FilesOfAsync(domain, cancellationToken).ConfigureAwait(false);
            use._domains.Add((name, await domain.GetStateAsync(cancellationToken).ConfigureAwait(false), persistent, files));
        }
        return use;
    }

    /// <summary>Every file <paramref name="domain"/>'s definitions name (persistent and running, every layer), and its persistent disks.</summary>
    public static async Task<(IReadOnlyList<DomainDisk> Persistent, List<string> Files)> FilesOfAsync(LibvirtDomain domain, CancellationToken cancellationToken)
    {
        var persistent = await domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false);
        var live = await domain.ListDisksAsync(inactive: false, cancellationToken).ConfigureAwait(false);
        return (persistent, persistent.Concat(live).SelectMany(d => d.Chain).Where(f => f.Length > 0).Distinct(StringComparer.Ordinal).ToList());
    }

    /// <summary>
    /// Whether a domain's definition names a file in <paramref name="folder"/> (on <paramref name="host"/>): null when
    /// none does; otherwise why the folder is in use, and the domain to hand back when the folder holds the lab's
    /// take-over record for that domain and it can be handed back now (<see cref="TakeOverRecord.CannotHandBack"/>).
    /// </summary>
    public async Task<(string UsedBy, TakeOverRecord? HandBack)?> JudgeAsync(ILabHost host, string folder, CancellationToken cancellationToken)
    {
        var prefix = folder.TrimEnd('/') + "/";
        var naming = _domains.Where(d => d.Files.Any(f => f.StartsWith(prefix, StringComparison.Ordinal))).ToList();
        if (naming.Count == 0)
        {
            return null;
        }
        var record = await TakeOverRecord.ReadAsync(host, folder, cancellationToken).ConfigureAwait(false);
        var first = naming[0];
        var named = first.Files.First(f => f.StartsWith(prefix, StringComparison.Ordinal));
        var usedBy = $"domain {first.Domain}'s definition names {Path.GetFileName(named)} in it";
        if (naming.Count == 1 && record is not null && record.Domain == first.Domain)
        {
            var why = TakeOverRecord.CannotHandBack(first.State, first.Persistent, record, folder);
            return why is null ? (usedBy + "; the lab's take-over record says how to hand it back", record) : ($"{usedBy}; {why}", null);
        }
        return (usedBy, null);
    }
}
