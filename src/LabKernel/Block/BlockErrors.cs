namespace LabKernel.Block;

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
