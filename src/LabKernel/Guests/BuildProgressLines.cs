namespace LabKernel.Guests;

/// <summary>
/// The guest image build's progress as lines a reader can follow, in a terminal, a log or a notebook cell: each
/// step with its number of all (debootstrap, customize, kernel, filesystem, qcow2, done) and the seconds since the
/// build began; debootstrap's hundreds of per-package lines as a count every <see cref="PackagesPerLine"/>. The
/// lines go to whatever <c>write</c> is given (the lab program: stderr; a notebook: the cell's output).
/// </summary>
public sealed class BuildProgressLines(Action<string> write, TimeProvider? time = null) : IProgress<GuestBuildProgress>
{
    /// <summary>The build's steps, in order (what <see cref="GuestImageBuilder"/> reports).</summary>
    public static readonly IReadOnlyList<string> Steps = ["debootstrap", "customize", "kernel", "filesystem", "qcow2", "done"];

    /// <summary>One line per this many package lines of debootstrap.</summary>
    public const int PackagesPerLine = 25;

    private static readonly string[] PerPackage = ["Retrieving", "Validating", "Extracting", "Unpacking", "Configuring"];

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private long _started = -1;
    private int _packages;

    /// <summary>The line for <paramref name="value"/>, or null when it is a per-package line not shown.</summary>
    public string? LineFor(GuestBuildProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_gate)
        {
            if (_started < 0)
            {
                _started = _time.GetTimestamp();
            }
            var message = value.Message;
            if (value.Stage == "debootstrap" && PerPackage.Any(p => value.Message.StartsWith(p, StringComparison.Ordinal)))
            {
                if (++_packages % PackagesPerLine != 0)
                {
                    return null;
                }
                message = $"{_packages} package steps ({value.Message})";
            }
            var step = Steps.ToList().IndexOf(value.Stage);
            var where = step < 0 ? value.Stage : $"step {step + 1}/{Steps.Count} {value.Stage}";
            return $"[guest image {_time.GetElapsedTime(_started).TotalSeconds,4:0} s, {where}] {message}";
        }
    }

    public void Report(GuestBuildProgress value)
    {
        if (LineFor(value) is { } line)
        {
            write(line);
        }
    }
}
