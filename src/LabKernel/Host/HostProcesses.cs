using System.Globalization;

namespace LabKernel.Host;

/// <summary>A process on this host as <c>/proc</c> shows it.</summary>
/// <param name="Pid">Its pid.</param>
/// <param name="ParentPid">Its parent's pid (<c>PPid:</c> of <c>/proc/PID/status</c>).</param>
/// <param name="Name">Its <c>comm</c> (the executable's name, at most 15 characters).</param>
/// <param name="Argv">Its command line.</param>
public sealed record HostProcess(int Pid, int ParentPid, string Name, IReadOnlyList<string> Argv)
{
    /// <summary>The command line joined with spaces, for searching.</summary>
    public string CommandLine => string.Join(' ', Argv);
}

/// <summary>The processes of this host, read from <c>/proc</c> in one pass.</summary>
public static class HostProcesses
{
    /// <summary>Every process readable now; those that end while being read are left out.</summary>
    public static IReadOnlyList<HostProcess> List()
    {
        var processes = new List<HostProcess>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            try
            {
                var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                var ppid = File.ReadLines(Path.Combine(dir, "status")).First(l => l.StartsWith("PPid:", StringComparison.Ordinal))["PPid:".Length..].Trim();
                processes.Add(new HostProcess(pid, int.Parse(ppid, CultureInfo.InvariantCulture), name, argv));
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return processes;
    }

    /// <summary>A process's pid and start time (<c>/proc/PID/stat</c>), or null when it is gone: a pid used again is another process.</summary>
    public static string? Identity(int pid)
    {
        try
        {
            return $"{pid} {StatFields(File.ReadAllText($"/proc/{pid}/stat"))[19]}";
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// The fields of a <c>/proc/PID/stat</c> line after the command name (which may hold spaces and parentheses, so
    /// the fields start after the last ')'): [0] is the state letter, [19] the start time.
    /// </summary>
    internal static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
}
