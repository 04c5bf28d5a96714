using LabKernel.Guests;

namespace LabRunner.Commands;

/// <summary>Shows the guest image build's steps on stderr (one line each, so it reads well in logs and terminals).</summary>
internal sealed class BuildProgressDisplay : IProgress<GuestBuildProgress>
{
    private readonly BuildProgressLines _lines = new(line => Console.Error.WriteLine(line));

    public void Report(GuestBuildProgress value) => _lines.Report(value);
}
