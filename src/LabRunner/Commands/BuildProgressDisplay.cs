using LabKernel.Guests;

namespace LabRunner.Commands;

/// <summary>Shows the guest image build's steps on stderr (one line each, so it reads well in logs and terminals).</summary>
internal sealed class BuildProgressDisplay : IProgress<GuestBuildProgress>
{
    private readonly DateTime _start = DateTime.UtcNow;
    private string? _stage;
    private int _packages;

    public void Report(GuestBuildProgress value)
    {
        var t = (DateTime.UtcNow - _start).TotalSeconds;
        if (value.Stage == "debootstrap" && value.Message.StartsWith("Unpacking", StringComparison.Ordinal) || value.Message.StartsWith("Retrieving", StringComparison.Ordinal) || value.Message.StartsWith("Validating", StringComparison.Ordinal) || value.Message.StartsWith("Extracting", StringComparison.Ordinal) || value.Message.StartsWith("Configuring", StringComparison.Ordinal))
        {
            // Per-package lines: show a count every 25 instead of hundreds of lines.
            if (++_packages % 25 != 0)
            {
                return;
            }
        }
        if (value.Stage != _stage)
        {
            _stage = value.Stage;
        }
        Console.Error.WriteLine($"[guest image {t,5:0}s] {value.Stage}: {value.Message}");
    }
}
