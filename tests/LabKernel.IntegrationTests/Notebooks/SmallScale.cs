namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>
/// The small-scale parameters of the notebook runs that several tests share (<see cref="NotebookRun.SharedAsync"/>):
/// the notebook's own end-to-end test and <see cref="ConformanceTests"/> (the same notebook in dotnet-repl, VS Code's
/// Jupyter kernel and its .csx twin) assert on one `lab run`, so it runs once.
/// </summary>
internal static class SmallScale
{
    /// <summary>Quiesced, so whether lines reach overlay1 does not depend on when ext4 writes back: the same verdicts in every host.</summary>
    public static readonly string[] Notebook01 = ["Count", "400000", "SnapshotAfterLines", "40000", "Quiesce", "fsfreeze"];

    public static readonly string[] Notebook02 = ["Count", "400000", "SnapshotAfterLines", "40000", "Quiesce", "fsfreeze"];

    public static readonly string[] Notebook05 = ["Increments", "2", "IncrementMiB", "4"];

    /// <summary>400,000 lines outlast the two snapshots about three times over on QEMU here (about 120,000 flushed when they end).</summary>
    public static readonly string[] Notebook06 = ["WriterLines", "400000"];
}
