namespace LabKernel;

/// <summary>An overlay or target the operation needs (an existing mirror target, a layer to revert to) is missing.</summary>
public sealed class OverlayMissingException : BlockOperationException
{
    public OverlayMissingException(string path, string role)
        : base($"{role} {path} does not exist")
    {
        Path = path;
    }

    public string Path { get; }
}
