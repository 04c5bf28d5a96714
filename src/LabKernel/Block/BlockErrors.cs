namespace LabKernel.Block;

/// <summary>A block-layer request the lab refused before (or instead of) sending it to QEMU; nothing was changed.</summary>
public class BlockOperationException : LabException
{
    public BlockOperationException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>No disk, device or node by that name (QMP <c>DeviceNotFound</c>, or no layer of the chain matches).</summary>
public sealed class UnknownBlockNodeException : BlockOperationException
{
    public UnknownBlockNodeException(string name, string where, Exception? inner = null)
        : base($"no block device or node '{name}' {where}", inner)
    {
        Name = name;
    }

    public string Name { get; }
}

/// <summary>A commit whose top and base are the same layer, or whose base is not below its top.</summary>
public sealed class InvalidCommitRangeException : BlockOperationException
{
    public InvalidCommitRangeException(string top, string @base, string reason)
        : base($"cannot commit {top} into {@base}: {reason}")
    {
        Top = top;
        Base = @base;
    }

    public string Top { get; }
    public string Base { get; }
}

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
