using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LabKernel.Images;

/// <summary>
/// The verdict of <c>qemu-img check --output=json</c>. The exit code is kept: 0 clean, 1 check errors,
/// 2 corruptions, 3 leaks only.
/// </summary>
/// <param name="Filename">Image checked.</param>
/// <param name="Format">Its format.</param>
/// <param name="CheckErrors">Errors that stopped the check itself (I/O errors, out of memory).</param>
/// <param name="Corruptions">Corruptions found (and not fixed).</param>
/// <param name="Leaks">Leaked clusters found (and not fixed): space wasted, data safe.</param>
/// <param name="CorruptionsFixed">Corruptions repaired with <c>-r all</c>.</param>
/// <param name="LeaksFixed">Leaks repaired with <c>-r leaks</c> or <c>-r all</c>.</param>
/// <param name="ImageEndOffset">Host offset just past the last used cluster.</param>
/// <param name="TotalClusters">Guest clusters in the image.</param>
/// <param name="AllocatedClusters">Of those, allocated.</param>
/// <param name="FragmentedClusters">Of those, fragmented.</param>
/// <param name="CompressedClusters">Of those, compressed.</param>
/// <param name="ExitCode">qemu-img's exit code.</param>
/// <param name="Messages">The lines qemu-img printed on stderr, e.g. <c>Leaked cluster 4 refcount=1 reference=0</c>.</param>
public sealed record CheckResult(
    string Filename,
    string Format,
    long CheckErrors,
    long Corruptions,
    long Leaks,
    long CorruptionsFixed,
    long LeaksFixed,
    long? ImageEndOffset,
    long? TotalClusters,
    long? AllocatedClusters,
    long? FragmentedClusters,
    long? CompressedClusters,
    int ExitCode,
    IReadOnlyList<string> Messages)
{
    /// <summary>No check errors, no corruptions, no leaks (after any repair).</summary>
    public bool IsClean => CheckErrors == 0 && Corruptions == 0 && Leaks == 0;

    /// <summary>One line for reports.</summary>
    public string Summary => IsClean
        ? $"{Filename}: clean" + (LeaksFixed + CorruptionsFixed > 0 ? $" after repairing {LeaksFixed} leak(s) and {CorruptionsFixed} corruption(s)" : "")
        : $"{Filename}: {Corruptions} corruption(s), {Leaks} leaked cluster(s), {CheckErrors} check error(s)";

    /// <summary>Parses the JSON of <c>qemu-img check --output=json</c> with the run's exit code and stderr.</summary>
    public static CheckResult Parse(string json, int exitCode = 0, string standardError = "")
    {
        using var doc = JsonDocument.Parse(json);
        var e = doc.RootElement;
        return new CheckResult(
            ImageInfo.Str(e, "filename") ?? "",
            ImageInfo.Str(e, "format") ?? "",
            ImageInfo.Long(e, "check-errors") ?? 0,
            ImageInfo.Long(e, "corruptions") ?? 0,
            ImageInfo.Long(e, "leaks") ?? 0,
            ImageInfo.Long(e, "corruptions-fixed") ?? 0,
            ImageInfo.Long(e, "leaks-fixed") ?? 0,
            ImageInfo.Long(e, "image-end-offset"),
            ImageInfo.Long(e, "total-clusters"),
            ImageInfo.Long(e, "allocated-clusters"),
            ImageInfo.Long(e, "fragmented-clusters"),
            ImageInfo.Long(e, "compressed-clusters"),
            exitCode,
            standardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}

/// <summary>The verdict of <c>qemu-img compare</c>.</summary>
/// <param name="Identical">True when the guest-visible contents are equal (exit code 0).</param>
/// <param name="FirstMismatchOffset">First differing guest offset qemu-img reported; null when identical or not reported.</param>
/// <param name="SizeMismatch">The images have different virtual sizes (a warning in normal mode, a difference in strict mode).</param>
/// <param name="Strict">Strict mode (<c>-s</c>): allocation status and size must match too.</param>
/// <param name="Message">What qemu-img printed, e.g. <c>Content mismatch at offset 1048576!</c>.</param>
public sealed partial record CompareResult(bool Identical, long? FirstMismatchOffset, bool SizeMismatch, bool Strict, string Message)
{
    /// <summary>Interprets stdout and exit code (0 identical, 1 different) of <c>qemu-img compare</c>.</summary>
    public static CompareResult Parse(string standardOutput, int exitCode, bool strict = false)
    {
        var text = standardOutput.Trim();
        var m = OffsetPattern().Match(text);
        long? offset = m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        var sizeMismatch = text.Contains("size mismatch", StringComparison.OrdinalIgnoreCase);
        var last = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        return new CompareResult(exitCode == 0, exitCode == 0 ? null : offset, sizeMismatch, strict, last);
    }

    [GeneratedRegex(@"[Oo]ffset (\d+)")]
    private static partial Regex OffsetPattern();
}

/// <summary>What <c>qemu-img measure --output=json</c> says a target image needs.</summary>
/// <param name="Required">Bytes needed for the data that is allocated now.</param>
/// <param name="FullyAllocated">Bytes needed when every cluster is allocated.</param>
/// <param name="Bitmaps">Bytes for persistent dirty bitmaps; null when not reported.</param>
public sealed record MeasureResult(long Required, long FullyAllocated, long? Bitmaps)
{
    /// <summary>Parses the JSON of <c>qemu-img measure --output=json</c>.</summary>
    public static MeasureResult Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var e = doc.RootElement;
        return new MeasureResult(
            ImageInfo.Long(e, "required") ?? throw new FormatException("measure JSON has no \"required\""),
            ImageInfo.Long(e, "fully-allocated") ?? throw new FormatException("measure JSON has no \"fully-allocated\""),
            ImageInfo.Long(e, "bitmaps"));
    }
}
