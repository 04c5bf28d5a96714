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
