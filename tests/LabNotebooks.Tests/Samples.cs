namespace LabNotebooks.Tests;

/// <summary>Files copied next to the tests (Samples/): qemu-img output, expected HTML, the kernel extension script.</summary>
internal static class Samples
{
    public static string Read(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Samples", name));
}
