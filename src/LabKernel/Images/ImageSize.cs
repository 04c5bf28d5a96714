namespace LabKernel.Images;

/// <summary>An image's sizes on the host: the file's length (<c>ls -l</c>), what the host allocated, the data it holds itself.</summary>
/// <param name="File">The image (full path).</param>
/// <param name="FileBytes">The file's length, as the documents' <c>ll</c> shows it.</param>
/// <param name="AllocatedBytes">Bytes the host file system allocated (<c>qemu-img info</c>'s disk size).</param>
/// <param name="DataBytes">Guest bytes this image holds itself, not its backing files (<c>qemu-img map</c>, depth 0).</param>
public sealed record ImageSize(string File, long FileBytes, long AllocatedBytes, long DataBytes)
{
    /// <summary>Measures <paramref name="file"/> (<c>qemu-img info -U</c> and <c>qemu-img map -U</c>: it may be in use).</summary>
    public static async Task<ImageSize> MeasureAsync(string file, CancellationToken cancellationToken = default)
    {
        var path = Path.GetFullPath(file);
        var info = await QemuImg.Local.InfoAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        var map = await QemuImg.Local.MapAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new ImageSize(path, new FileInfo(path).Length, info.ActualSize ?? 0, map.BytesAllocatedInActive);
    }
}

/// <summary>One row of an <see cref="ImageSizeLog"/>, in MiB rounded to 0.1, for a table.</summary>
public sealed record SizeRow(string Step, string Image, double FileMiB, double AllocatedMiB, double DataMiB)
{
    public static SizeRow Of(string step, ImageSize size)
    {
        ArgumentNullException.ThrowIfNull(size);
        return new SizeRow(step, Path.GetFileName(size.File), MiB(size.FileBytes), MiB(size.AllocatedBytes), MiB(size.DataBytes));
    }

    private static double MiB(long bytes) => Math.Round(bytes / 1048576.0, 1);
}

/// <summary>The sizes of some images at one step of an experiment.</summary>
public sealed record ImageSizes(string Step, IReadOnlyList<ImageSize> Images)
{
    /// <summary>The size of <paramref name="file"/> at this step.</summary>
    public ImageSize this[string file] =>
        Images.FirstOrDefault(i => i.File == Path.GetFullPath(file)) ?? throw new LabUsageException($"{file} was not measured at step '{Step}'");

    /// <summary>How many bytes the host allocated for <paramref name="file"/> since <paramref name="earlier"/> (negative: fewer).</summary>
    public long GrownSince(ImageSizes earlier, string file)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        return this[file].AllocatedBytes - earlier[file].AllocatedBytes;
    }
}

/// <summary>Sizes measured along an experiment, step by step, for findings (growth) and a table.</summary>
public sealed class ImageSizeLog
{
    private readonly List<SizeRow> _rows = [];

    /// <summary>Every row so far, in order.</summary>
    public IReadOnlyList<SizeRow> Rows => _rows;

    /// <summary>Measures each file (<see cref="ImageSize.MeasureAsync"/>) and records it under <paramref name="step"/>.</summary>
    public async Task<ImageSizes> MeasureAsync(string step, params string[] files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var sizes = new List<ImageSize>();
        foreach (var f in files)
        {
            sizes.Add(await ImageSize.MeasureAsync(f).ConfigureAwait(false));
        }
        return Record(new ImageSizes(step, sizes));
    }

    /// <summary>Records sizes measured elsewhere.</summary>
    public ImageSizes Record(ImageSizes sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        _rows.AddRange(sizes.Images.Select(i => SizeRow.Of(sizes.Step, i)));
        return sizes;
    }

    /// <summary>The rows of the steps whose name starts with <paramref name="stepPrefix"/>.</summary>
    public IReadOnlyList<SizeRow> Steps(string stepPrefix) => _rows.Where(r => r.Step.StartsWith(stepPrefix, StringComparison.Ordinal)).ToList();
}
