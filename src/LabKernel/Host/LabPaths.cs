namespace LabKernel.Host;

/// <summary>Where the lab keeps what outlives a run: <c>$XDG_CACHE_HOME/labnotebooks</c> or <c>~/.cache/labnotebooks</c>.</summary>
public static class LabPaths
{
    /// <summary>The cache root; <c>LAB_CACHE_DIR</c> overrides it.</summary>
    public static string CacheRoot
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("LAB_CACHE_DIR");
            if (!string.IsNullOrEmpty(overridden))
            {
                return overridden;
            }
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                : xdg;
            return Path.Combine(root, "labnotebooks");
        }
    }

    /// <summary>A new private (0700) folder for one machine's sockets and logs, under the runtime dir or /tmp.</summary>
    public static string CreatePrivateRuntimeFolder(string prefix)
    {
        var baseDir = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        if (string.IsNullOrEmpty(baseDir) || !Directory.Exists(baseDir))
        {
            baseDir = Path.GetTempPath();
        }
        // Unix socket paths are limited to 107 bytes: keep the name short.
        var dir = Path.Combine(baseDir, $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(dir, Private.Folder);
        return dir;
    }

    /// <summary>Removes a folder the lab made, best effort: clean-up must not hide the error that led to it.</summary>
    public static void TryDeleteFolder(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}

/// <summary>The modes of what only the lab's user may read: raw copies of disks, keys, sockets' folders.</summary>
public static class Private
{
    /// <summary>0700.</summary>
    public const UnixFileMode Folder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>0600.</summary>
    public const UnixFileMode File = UnixFileMode.UserRead | UnixFileMode.UserWrite;
}
