namespace LabKernel.Images;

/// <summary>Options of <c>qemu-img create</c>.</summary>
public sealed record CreateOptions
{
    /// <summary>Backing file (<c>-b</c>). A relative name is stored as written and resolved by QEMU against the new image's folder.</summary>
    public string? BackingFile { get; init; }

    /// <summary>Backing format (<c>-F</c>). When null with a backing file, the lab probes it with <c>qemu-img info -U</c>.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>qcow2 cluster size in bytes (<c>-o cluster_size=</c>).</summary>
    public int? ClusterSize { get; init; }

    /// <summary>Further <c>-o</c> options, e.g. <c>lazy_refcounts=on</c>, <c>preallocation=metadata</c>.</summary>
    public IReadOnlyDictionary<string, string>? Options { get; init; }
}

/// <summary>Which repairs <c>qemu-img check -r</c> may make.</summary>
public enum CheckRepair
{
    /// <summary>Read-only check.</summary>
    None,

    /// <summary><c>-r leaks</c>: free leaked clusters only.</summary>
    Leaks,

    /// <summary><c>-r all</c>: also fix corruptions (may lose data).</summary>
    All,
}

/// <summary>Options of <c>qemu-img check</c>.</summary>
public sealed record CheckOptions
{
    /// <summary>Image format (<c>-f</c>); null: probed.</summary>
    public string? Format { get; init; }

    /// <summary>
    /// Force-share (<c>-U</c>) so an image a running QEMU holds can be checked read-only; ignored when repairing.
    /// A check of an image in use may report transient inconsistencies.
    /// </summary>
    public bool ForceShare { get; init; } = true;

    /// <summary>Repair mode (<c>-r</c>). Repairs write, so they are refused on an image in use.</summary>
    public CheckRepair Repair { get; init; } = CheckRepair.None;
}

/// <summary>Options of <c>qemu-img compare</c>.</summary>
public sealed record CompareOptions
{
    /// <summary>Strict mode (<c>-s</c>): images differ also when allocation status or size differ.</summary>
    public bool Strict { get; init; }

    /// <summary>Force-share (<c>-U</c>) so images in use by QEMU can be read.</summary>
    public bool ForceShare { get; init; } = true;

    /// <summary>Format of the first image (<c>-f</c>).</summary>
    public string? FirstFormat { get; init; }

    /// <summary>Format of the second image (<c>-F</c>).</summary>
    public string? SecondFormat { get; init; }
}

/// <summary>Options of <c>qemu-img commit</c>.</summary>
public sealed record CommitOptions
{
    /// <summary>Image format of the committed image (<c>-f</c>).</summary>
    public string? Format { get; init; }

    /// <summary>
    /// Commit into this image further down the chain (<c>-b</c>) instead of the direct backing file: every layer
    /// between the image and the base is committed too. qemu-img then leaves the image unemptied (implies <c>-d</c>).
    /// </summary>
    public string? Base { get; init; }

    /// <summary>Do not empty the committed image afterwards (<c>-d</c>).</summary>
    public bool KeepContents { get; init; }

    /// <summary>Time limit of the run.</summary>
    public TimeSpan? Timeout { get; init; } = TimeSpan.FromMinutes(30);
}

/// <summary>Options of <c>qemu-img rebase</c>.</summary>
public sealed record RebaseOptions
{
    /// <summary>Format of the image being rebased (<c>-f</c>).</summary>
    public string? Format { get; init; }

    /// <summary>Format of the new backing file (<c>-F</c>); null with a backing file: probed with <c>qemu-img info -U</c>.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>
    /// Unsafe mode (<c>-u</c>): only rewrite the backing name in the header. Safe mode (default) first copies into
    /// the image every cluster where the old and new backing chains differ, so the guest-visible content is kept.
    /// </summary>
    public bool Unsafe { get; init; }

    /// <summary>Time limit of the run.</summary>
    public TimeSpan? Timeout { get; init; } = TimeSpan.FromMinutes(30);
}

/// <summary>Options of <c>qemu-img convert</c>.</summary>
public sealed record ConvertOptions
{
    /// <summary>Source format (<c>-f</c>).</summary>
    public string? SourceFormat { get; init; }

    /// <summary>Compress the target (<c>-c</c>; qcow2 only).</summary>
    public bool Compress { get; init; }

    /// <summary>
    /// Force-share the source (<c>-U</c>). Off by default: a copy of an image QEMU is writing is not consistent.
    /// </summary>
    public bool ForceShare { get; init; }

    /// <summary>Target <c>-o</c> options, e.g. <c>cluster_size=65536</c>.</summary>
    public IReadOnlyDictionary<string, string>? Options { get; init; }

    /// <summary>Time limit of the run.</summary>
    public TimeSpan? Timeout { get; init; } = TimeSpan.FromMinutes(30);
}
