namespace LabKernel;

/// <summary>A snapshot or a new mirror target would overwrite a file that exists; the lab never does.</summary>
public sealed class OverlayExistsException : BlockOperationException
{
    public OverlayExistsException(string path)
        : base($"refusing to overwrite existing file {path}; pick a new overlay name or delete it first")
    {
        Path = path;
    }

    public string Path { get; }
}
