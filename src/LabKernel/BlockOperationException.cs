namespace LabKernel;

/// <summary>
/// A block-layer request the lab refused before (or instead of) sending it to QEMU or qemu-img; nothing was changed.
/// In the root namespace because the image layer (qemu-img create) and the block layer refuse the same way.
/// </summary>
public class BlockOperationException : LabException
{
    public BlockOperationException(string message, Exception? inner = null) : base(message, inner) { }
}
