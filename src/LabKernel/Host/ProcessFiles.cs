namespace LabKernel.Host;

/// <summary>What a process on this host holds open, from <c>/proc/PID/fd</c>.</summary>
public static class ProcessFiles
{
    /// <summary>
    /// The distinct files process <paramref name="pid"/> holds open (the targets of its <c>/proc/PID/fd</c> links),
    /// optionally only those ending in <paramref name="suffix"/>; empty when the process is gone.
    /// </summary>
    public static IReadOnlyList<string> OpenBy(int pid, string? suffix = null)
    {
        string[] fds;
        try
        {
            fds = Directory.GetFiles($"/proc/{pid}/fd");
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
        var targets = new List<string>();
        foreach (var fd in fds)
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && (suffix is null || target.EndsWith(suffix, StringComparison.Ordinal)))
                {
                    targets.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed between the listing and the look.
            }
        }
        return targets.Distinct(StringComparer.Ordinal).ToList();
    }
}

/// <summary>
/// After images were moved away from a running QEMU (notebook 03, experiment 6): does QEMU still hold any of them?
/// Read from its open files, resolved: a file QEMU held when it was moved to another filesystem shows as its old path
/// with " (deleted)" (the move copied it and unlinked the original), or, moved within one filesystem, as its new path.
/// The active image must be among them, or the reading itself is in doubt (an empty list would pass anything).
/// </summary>
public static class MovedImages
{
    public const string DeletedSuffix = " (deleted)";

    /// <summary>
    /// The images of <paramref name="left"/> (those the VM's disk left by its pivots) that <paramref name="open"/> (QEMU's
    /// open files) still names, in <paramref name="left"/>'s order: after the pivots none may be (notebook 03, experiment 6).
    /// </summary>
    public static IReadOnlyList<string> StillHeld(IReadOnlyList<string> open, IEnumerable<string> left)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(left);
        return left.Where(open.Contains).ToList();
    }

    /// <summary>
    /// Judges "QEMU holds none of the images <paramref name="left"/> and still holds <paramref name="active"/>": an empty
    /// or foreign reading (no such process, paths that do not resolve as the lab names them) names none of the images
    /// left either, so without the active image among the open files the verdict is false and the observation says why.
    /// </summary>
    public static (bool HoldsNone, string Observed) JudgeLeft(IReadOnlyList<string> open, IReadOnlyList<string> left, string active)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(left);
        var stillHeld = StillHeld(open, left);
        var holdsActive = open.Contains(active);
        var observed = $"{open.Count} open files; the active {Path.GetFileName(active)} {(holdsActive ? "among them" : "NOT among them (the reading is in doubt)")}; " +
            (stillHeld.Count == 0 ? $"none of the {left.Count} images the VM left" : $"still held: {string.Join(", ", stillHeld.Select(Path.GetFileName))}");
        return (stillHeld.Count == 0 && holdsActive, observed);
    }

    /// <summary>Judges "QEMU holds none of the moved images and still holds <paramref name="active"/>".</summary>
    public static (bool Holds, string Observed) Judge(IReadOnlyList<string> open, IReadOnlyList<(string From, string To)> moved, string active)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(moved);
        var stillHeld = open.Where(o =>
            o.EndsWith(DeletedSuffix, StringComparison.Ordinal)
            || moved.Any(m => o == m.From || o == m.To || o == m.From + DeletedSuffix)).ToList();
        var holdsActive = open.Contains(active);
        var holds = stillHeld.Count == 0 && holdsActive;
        var observed = $"{open.Count} open files; the active {Path.GetFileName(active)} {(holdsActive ? "among them" : "NOT among them (the reading is in doubt)")}; " +
            (stillHeld.Count == 0 ? $"none of the {moved.Count} moved images and no deleted file" : $"still held: {string.Join(", ", stillHeld)}");
        return (holds, observed);
    }
}
