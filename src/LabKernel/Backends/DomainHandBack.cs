using System.Diagnostics;
using LabKernel.Host;

namespace LabKernel.Backends;

/// <summary>One image of a user's domain at take-over and at hand-back.</summary>
/// <param name="Disk">The disk whose chain holds it (<c>vda</c>).</param>
/// <param name="Image">The file: an active image or a backing file of the user's.</param>
/// <param name="Sha256AtTakeOver">Its SHA-256 once the lab's overlays were on top (read-only from then on).</param>
/// <param name="Sha256AtHandBack">Its SHA-256 after the guest was stopped, before the domain was started on it again.</param>
public sealed record ImageEvidence(string Disk, string Image, string Sha256AtTakeOver, string Sha256AtHandBack)
{
    /// <summary>True when the image's bytes are the same at hand-back as at take-over.</summary>
    public bool Unchanged => Sha256AtTakeOver == Sha256AtHandBack;
}

/// <summary>How a user's domain was handed back (see <see cref="ILabGuest.HandBack"/>).</summary>
/// <param name="Domain">The domain's name.</param>
/// <param name="Disk">The disk the lab worked on (every disk ran on a lab overlay).</param>
/// <param name="Images">Every image of every disk of the domain, each hashed at take-over and at hand-back.</param>
/// <param name="HashTime">How long hashing them at hand-back took.</param>
/// <param name="HashedBytes">How many bytes that read.</param>
/// <param name="Summary">One line: what was put back.</param>
public sealed record DomainHandBack(string Domain, string Disk, IReadOnlyList<ImageEvidence> Images, TimeSpan HashTime, long HashedBytes, string Summary)
{
    /// <summary>True when every image of every disk has the same bytes at hand-back as at take-over.</summary>
    public bool ImagesUnchanged => Images.All(i => i.Unchanged);

    /// <summary>The disks whose images were hashed, in the domain's order.</summary>
    public IReadOnlyList<string> Disks => [.. Images.Select(i => i.Disk).Distinct(StringComparer.Ordinal)];

    /// <summary>The claim a findings table checks.</summary>
    public string Claim => $"Your domain's images ({string.Join(", ", Disks)}) were not written between take-over and hand-back";

    /// <summary>The evidence in one line, for a findings table: each changed image first, then the count and the time hashing took.</summary>
    public string Evidence
    {
        get
        {
            var changed = Images.Where(i => !i.Unchanged).ToList();
            var each = string.Join("; ", Images.GroupBy(i => i.Disk).Select(g => $"{g.Key}: {string.Join(", ", g.Select(i => $"{Path.GetFileName(i.Image)} {i.Sha256AtTakeOver[..12]}…{(i.Unchanged ? "" : $" -> {i.Sha256AtHandBack[..12]}… CHANGED")}"))}"));
            var head = changed.Count == 0
                ? $"all {Images.Count} images the same SHA-256 at take-over and at hand-back"
                : $"{changed.Count} of {Images.Count} images changed: {string.Join(", ", changed.Select(i => $"{Path.GetFileName(i.Image)} ({i.Disk})"))}";
            return $"{head} ({each}); hashing {HashedBytes / 1048576.0:0} MiB took {HashTime.TotalSeconds:0.0} s";
        }
    }
}

/// <summary>The SHA-256 of a set of images, each with its disk, and how long reading them took.</summary>
public sealed record ImageHashes(IReadOnlyList<(string Disk, string Image, string Sha256)> Hashes, TimeSpan Elapsed, long Bytes)
{
    /// <summary>The images hashed, with their disks.</summary>
    public IReadOnlyList<(string Disk, string Image)> Images => [.. Hashes.Select(h => (h.Disk, h.Image))];

    /// <summary>
    /// Hashes each image on <paramref name="host"/> (this machine when null), two at a time: reading is the cost, and
    /// the host has other work. On another host the hashing runs there; only the digests come back.
    /// </summary>
    public static async Task<ImageHashes> TakeAsync(IReadOnlyList<(string Disk, string Image)> images, CancellationToken cancellationToken = default, ILabHost? host = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        host ??= LocalHost.Instance;
        var clock = Stopwatch.StartNew();
        var hashes = new string[images.Count];
        var sizes = new long[images.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, images.Count), new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                hashes[i] = await host.Sha256Async(images[i].Image, ct).ConfigureAwait(false);
                sizes[i] = await host.FileSizeAsync(images[i].Image, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
        return new ImageHashes([.. images.Select((im, i) => (im.Disk, im.Image, hashes[i]))], clock.Elapsed, sizes.Sum());
    }

    /// <summary>This set (at take-over) against <paramref name="later"/> (at hand-back), image by image.</summary>
    public IReadOnlyList<ImageEvidence> Compare(ImageHashes later)
    {
        ArgumentNullException.ThrowIfNull(later);
        return [.. Hashes.Select(h => new ImageEvidence(h.Disk, h.Image, h.Sha256, later.Hashes.FirstOrDefault(l => l.Image == h.Image).Sha256 ?? "(not hashed)"))];
    }
}

/// <summary>How a user's domain was taken over (see <see cref="ILabGuest.TakeOver"/>).</summary>
/// <param name="Domain">The domain's name.</param>
/// <param name="Disk">The one disk the lab works on.</param>
/// <param name="WasRunning">The domain ran when the lab took it over (its first overlays were put on live).</param>
/// <param name="Quiesced">Those live overlays were taken with the guest's filesystems frozen (fsfreeze through the agent).</param>
/// <param name="QuiesceRefusal">Why it was not, when the agent could not freeze: libvirt's error, else null.</param>
public sealed record DomainTakeOver(string Domain, string Disk, bool WasRunning, bool Quiesced, string? QuiesceRefusal)
{
    /// <summary>Every disk put on a lab overlay (the worked-on one and the others), in the domain's order.</summary>
    public IReadOnlyList<string> Disks { get; init; } = [];

    private string Covered => Disks.Count > 1 ? $"; every writable disk ({string.Join(", ", Disks)}) runs on a lab overlay, so nothing reaches your images" : "";

    /// <summary>One line for a finding.</summary>
    public string Evidence => (!WasRunning
        ? "the domain was shut off: the lab put its overlays on before starting it, so nothing needed freezing"
        : Quiesced
            ? "first overlays taken live, atomically, with the guest's filesystems frozen (DISK_ONLY|ATOMIC|QUIESCE)"
            : $"first overlays taken live WITHOUT quiescing (crash-consistent): the guest agent could not freeze: {QuiesceRefusal}") + Covered;
}
