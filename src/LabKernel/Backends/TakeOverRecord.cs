using System.Text.Json;
using LabKernel.Host;
using LabKernel.Libvirt;

namespace LabKernel.Backends;

/// <summary>One disk of a user's domain as the lab found it: what its definition named before the take-over.</summary>
public sealed record TakeOverDisk(string Target, string Source, string Format);

/// <summary>
/// What the lab changed when it took over a user's domain, written into the run's image folder (on the domain's host)
/// before the domain is moved onto the lab's overlays: the domain, each covered disk's own image, the snapshot records
/// it had. A process that ends normally, or on Ctrl-C or SIGTERM, hands the domain back itself; one that is killed, or
/// whose host goes down, cannot. Then `lab clean` (or `lab clean --uri`) reads this record and hands the domain back:
/// only when it is shut off and its definition still names the lab's files in this folder for the recorded disks.
/// </summary>
public sealed record TakeOverRecord(string Domain, IReadOnlyList<TakeOverDisk> Disks, IReadOnlyList<string> SnapshotNames)
{
    /// <summary>The record's file name in the run's image folder.</summary>
    public const string FileName = "lab-takeover.json";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    /// <summary>Writes the record into <paramref name="folder"/> on <paramref name="host"/>.</summary>
    public async Task WriteAsync(ILabHost host, string folder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        await host.WriteAllBytesAsync(Path.Combine(folder, FileName), JsonSerializer.SerializeToUtf8Bytes(this, Json), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The record in <paramref name="folder"/> on <paramref name="host"/>, or null when there is none or it cannot be read.</summary>
    public static async Task<TakeOverRecord?> ReadAsync(ILabHost host, string folder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var path = Path.Combine(folder, FileName);
        if (!await host.FileExistsAsync(path, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }
        try
        {
            return Parse(await host.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false));
        }
        catch (LabException)
        {
            return null;
        }
    }

    /// <summary>The record from its JSON, or null when it is not one (a truncated or foreign file).</summary>
    public static TakeOverRecord? Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var record = JsonSerializer.Deserialize<TakeOverRecord>(json, Json);
            return record is { Domain.Length: > 0, Disks.Count: > 0 } && record.Disks.All(d => d is { Target.Length: > 0, Source.Length: > 0 }) ? record : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Why the domain cannot be handed back from this record now, or null when it can: it must be shut off, and each
    /// recorded disk's definition must name a file in <paramref name="folder"/> (the lab's overlay) rather than
    /// something else (the user redefined it since, and that is theirs).
    /// </summary>
    public static string? CannotHandBack(DomainState state, IReadOnlyList<DomainDisk> persistent, TakeOverRecord record, string folder)
    {
        ArgumentNullException.ThrowIfNull(persistent);
        ArgumentNullException.ThrowIfNull(record);
        if (state != DomainState.ShutOff)
        {
            return $"domain {record.Domain} is {state.ToString().ToLowerInvariant()} on the lab's overlays in it: shut it off, then lab clean hands it back";
        }
        var prefix = folder.TrimEnd('/') + "/";
        foreach (var d in record.Disks)
        {
            var now = persistent.FirstOrDefault(p => p.Target == d.Target);
            if (now is null || !now.Source.StartsWith(prefix, StringComparison.Ordinal))
            {
                return $"domain {record.Domain}'s {d.Target} names {now?.Source ?? "nothing"}, not the lab's overlay: its definition changed since, so it is left as it is";
            }
        }
        return null;
    }

    /// <summary>
    /// Points <paramref name="domain"/>'s definition at the recorded images again and drops snapshot records the lab
    /// made (those not in <see cref="SnapshotNames"/>). The caller checked <see cref="CannotHandBack"/>. Returns one line.
    /// </summary>
    public async Task<string> HandBackAsync(LibvirtDomain domain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domain);
        await domain.SetPersistentDiskSourcesAsync([.. Disks.Select(d => (d.Target, d.Source, d.Format.Length > 0 ? d.Format : (string?)null))], cancellationToken).ConfigureAwait(false);
        var dropped = await domain.Snapshots.DropMetadataExceptAsync(SnapshotNames, cancellationToken).ConfigureAwait(false);
        return $"handed domain {Domain} back: its definition names its own images again ({string.Join(", ", Disks.Select(d => $"{d.Target} {Path.GetFileName(d.Source)}"))})"
            + (dropped.Count > 0 ? $"; dropped {dropped.Count} snapshot record(s) the lab made" : "");
    }
}
