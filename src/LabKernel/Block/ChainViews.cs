using System.Collections.Concurrent;

namespace LabKernel.Block;

/// <summary>
/// The lab's last view of each disk's chain on one QMP connection: lets a snapshot skip the look-up round trips
/// (each costs ~2 ms against a running TCG guest). There is one per connection, owned by the <see cref="BlockLayer"/>
/// made for that connection (a machine keeps one for its QMP socket, a libvirt guest one for its monitor), so every
/// caller on the connection sees the same views. The operations that change a chain keep it true: a snapshot
/// records the new chain, a commit, stream or mirror forgets the disk when it starts and again when its job
/// concludes, releasing or deleting nodes forgets the disk. A view made stale from outside (another QMP client)
/// is caught by QEMU refusing the node it names, and the snapshot retries after a live look-up.
/// </summary>
internal sealed class ChainViews
{
    private readonly ConcurrentDictionary<string, LiveChain> _chains = new(StringComparer.Ordinal);

    /// <summary>The remembered chain of <paramref name="disk"/>, if any.</summary>
    public bool TryGet(string disk, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LiveChain? chain) =>
        _chains.TryGetValue(disk, out chain);

    /// <summary>Remembers <paramref name="chain"/> as its disk's current chain.</summary>
    public void Remember(LiveChain chain) => _chains[chain.Disk] = chain;

    /// <summary>Forgets one disk's chain, or every disk's when <paramref name="disk"/> is null.</summary>
    public void Forget(string? disk)
    {
        if (disk is null)
        {
            _chains.Clear();
        }
        else
        {
            _chains.TryRemove(disk, out _);
        }
    }

    /// <summary>The disks with a remembered chain.</summary>
    public IReadOnlyCollection<string> Disks => _chains.Keys.ToArray();
}
