namespace LabKernel.Backends;

/// <summary>How a user's domain was handed back (see <see cref="ILabGuest.HandBack"/>).</summary>
/// <param name="Domain">The domain's name.</param>
/// <param name="Disk">The one disk the lab worked on (its other disks it never touches).</param>
/// <param name="Image">The disk's own active image, which the guest writes when the lab is not there.</param>
/// <param name="Sha256AtTakeOver">Its SHA-256 once the lab's overlay was on top (the image read-only from then on).</param>
/// <param name="Sha256AtHandBack">Its SHA-256 after the guest was stopped, before the domain was started on it again.</param>
/// <param name="Summary">One line: what was put back.</param>
public sealed record DomainHandBack(string Domain, string Disk, string Image, string Sha256AtTakeOver, string Sha256AtHandBack, string Summary)
{
    /// <summary>True when the image's bytes are the same at hand-back as at take-over.</summary>
    public bool ImageUnchanged => Sha256AtTakeOver == Sha256AtHandBack;

    /// <summary>The evidence in one line, for a findings table.</summary>
    public string Evidence =>
        $"{System.IO.Path.GetFileName(Image)} ({Disk}) SHA-256 {Sha256AtTakeOver[..16]}… at take-over, {Sha256AtHandBack[..16]}… at hand-back";
}

/// <summary>How a user's domain was taken over (see <see cref="ILabGuest.TakeOver"/>).</summary>
/// <param name="Domain">The domain's name.</param>
/// <param name="Disk">The one disk the lab works on.</param>
/// <param name="WasRunning">The domain ran when the lab took it over (its first overlay was put on live).</param>
/// <param name="Quiesced">That live overlay was taken with the guest's filesystems frozen (fsfreeze through the agent).</param>
/// <param name="QuiesceRefusal">Why it was not, when the agent could not freeze: libvirt's error, else null.</param>
public sealed record DomainTakeOver(string Domain, string Disk, bool WasRunning, bool Quiesced, string? QuiesceRefusal)
{
    /// <summary>One line for a finding.</summary>
    public string Evidence => !WasRunning
        ? "the domain was shut off: the lab put its overlays on before starting it, so nothing needed freezing"
        : Quiesced
            ? "first overlay taken live with the guest's filesystems frozen (DISK_ONLY|ATOMIC|QUIESCE)"
            : $"first overlay taken live WITHOUT quiescing (crash-consistent): the guest agent could not freeze: {QuiesceRefusal}";
}
