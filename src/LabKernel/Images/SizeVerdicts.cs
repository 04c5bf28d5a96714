namespace LabKernel.Images;

/// <summary>
/// The verdicts notebook 03 draws from image sizes measured around a commit, a guest's write or a second mirror
/// (<see cref="ImageSizes"/>), with their thresholds named. Each is false for the fault it guards against: a write
/// that landed in another image, a commit that moved nothing, a copy of another size.
/// </summary>
public static class SizeVerdicts
{
    /// <summary>
    /// The share of the bytes the guest wrote that the image written must have grown by: not all of a write need
    /// show as growth (clusters the image already held are rewritten in place).
    /// </summary>
    public const double WrittenShare = 0.9;

    /// <summary>A commit moves at least this many tenths of the overlay's data into its backing file.</summary>
    public const long MovedTenths = 9;

    /// <summary>An overlay the commit emptied (HMP <c>commit</c>) keeps under this many tenths of its data.</summary>
    public const long KeptTenths = 1;

    /// <summary>Two images are about as big when they differ by at most 1/<see cref="SameSizeParts"/> of the reference (5%).</summary>
    public const long SameSizeParts = 20;

    /// <summary><see cref="WrittenShare"/> of <paramref name="writtenBytes"/>, truncated to whole bytes.</summary>
    public static long MostOfWrite(long writtenBytes) => (long)(writtenBytes * WrittenShare);

    /// <summary>
    /// A write of <paramref name="writtenBytes"/> landed in an image that grew by <paramref name="grownBytes"/>: at least
    /// <see cref="MostOfWrite"/> of it.
    /// </summary>
    public static bool WriteLanded(long grownBytes, long writtenBytes) => grownBytes >= MostOfWrite(writtenBytes);

    /// <summary>
    /// A write landed in one image (<see cref="WriteLanded"/>) and in no other: every one of
    /// <paramref name="othersGrownBytes"/> grew by exactly 0 (notebook 03's "grows the mirror, not the original").
    /// </summary>
    public static bool WriteLandedOnlyIn(long grownBytes, long writtenBytes, params long[] othersGrownBytes)
    {
        ArgumentNullException.ThrowIfNull(othersGrownBytes);
        return WriteLanded(grownBytes, writtenBytes) && othersGrownBytes.All(g => g == 0);
    }

    /// <summary>
    /// A commit moved an overlay's data into its backing file: the backing file's data (<c>qemu-img map</c>, depth 0)
    /// grew by at least <see cref="MovedTenths"/>/10 of what the overlay held before, and, when the commit empties the
    /// overlay (<paramref name="overlayEmptied"/>, as HMP <c>commit</c> does), the overlay keeps under
    /// <see cref="KeptTenths"/>/10 of it. Integer arithmetic, as bytes.
    /// </summary>
    public static bool DataMovedDown(long overlayBefore, long backingBefore, long overlayAfter, long backingAfter, bool overlayEmptied) =>
        backingAfter >= backingBefore + overlayBefore * MovedTenths / 10 && (!overlayEmptied || overlayAfter < overlayBefore * KeptTenths / 10);

    /// <summary>
    /// <paramref name="size"/> is within 1/<see cref="SameSizeParts"/> of <paramref name="reference"/> (integer division):
    /// notebook 03's "the second mirror is as big as the first".
    /// </summary>
    public static bool AboutAsBig(long size, long reference) => Math.Abs(size - reference) <= reference / SameSizeParts;

    /// <summary>
    /// A mirror made after the disk switched to <paramref name="switched"/> copied that image, not the one before the
    /// switch: it is about as big as <paramref name="switched"/> (<see cref="AboutAsBig"/>) and differs from it by less
    /// than half of <paramref name="writtenSinceSwitch"/>, the data written into the switched image only (notebook 03's
    /// dd after its first pivot), which a copy of the image before the switch would lack. At small scale that write is
    /// a few percent of the disk, so 5% alone could not tell the two apart.
    /// </summary>
    public static bool CopiedTheSwitchedImage(long copy, long switched, long writtenSinceSwitch) =>
        AboutAsBig(copy, switched) && Math.Abs(copy - switched) < writtenSinceSwitch / 2;
}
