namespace LabKernel.Tests.Images;

/// <summary>
/// Outputs captured from the real qemu-img 7.2 (Debian 12) into Images/Samples. Read from the output folder when the
/// project copies them there, otherwise from the source tree next to this file.
/// </summary>
internal static class Samples
{
    private static readonly Lazy<string> Folder = new(Locate);

    public static string Read(string name) => File.ReadAllText(Path.Combine(Folder.Value, name));

    public static string PathOf(string name) => Path.Combine(Folder.Value, name);

    private static string Locate()
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "Images", "Samples");
        if (Directory.Exists(copied))
        {
            return copied;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "LabKernel.Tests", "Images", "Samples");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"Images/Samples not found from {AppContext.BaseDirectory}");
    }
}
