using System.Globalization;
using LabKernel.Host;

namespace LabKernel.Tests;

/// <summary>What /proc says of this machine's processes: for tests that check a program was ended (here, or by an sshd on 127.0.0.1).</summary>
internal static class ProcTable
{
    /// <summary>Waits (5 s at most) until process <paramref name="pid"/> is gone or a zombie (ended, its parent not yet told).</summary>
    public static Task WaitEndedAsync(int pid, string what) =>
        Poll.UntilAsync(_ => Task.FromResult((Ended(pid), $"pid {pid} still there")), $"{what} (pid {pid}) to be ended", TimeSpan.FromSeconds(5));

    /// <summary>Process <paramref name="pid"/> is gone or a zombie.</summary>
    public static bool Ended(int pid) => Stat(pid.ToString(CultureInfo.InvariantCulture)) is not { } fields || fields[0] == "Z";

    /// <summary>Whether any live (not zombie) process is in process group <paramref name="group"/>.</summary>
    public static bool GroupHasMembers(int group)
    {
        var id = group.ToString(CultureInfo.InvariantCulture);
        return Directory.EnumerateDirectories("/proc").Any(d => Stat(Path.GetFileName(d)) is { } fields && fields[0] != "Z" && fields[2] == id);
    }

    /// <summary>The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); null for no such process.</summary>
    private static string[]? Stat(string pid)
    {
        try
        {
            var parts = File.ReadAllText($"/proc/{pid}/stat").Split(") ");
            return parts.Length < 2 ? null : parts[^1].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
