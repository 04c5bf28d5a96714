using System.Text.Json.Nodes;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>Notebook 03 (drive_mirror, document 001) end to end through `lab run` at a small scale.</summary>
public sealed class Notebook03Tests
{
    [Fact]
    public async Task Given_notebook_03_at_small_scale_When_run_Then_all_seven_parts_run_and_every_claim_is_confirmed()
    {
        using var run = await NotebookRun.RunAsync("03-drive-mirror", "FileOps", "20", "WriteMiB", "16", "OutageSeconds", "4");

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        // Every part of the document reported something.
        foreach (var part in Enumerable.Range(1, 7))
        {
            Assert.Contains(run.Findings, f => f.Claim.StartsWith($"{part}. ", StringComparison.Ordinal));
        }
        Assert.Contains(run.Findings, f => f.Claim.Contains("offset flat", StringComparison.Ordinal) && f.Verdict == "confirmed");
        // Experiment 6 moves the original to a second filesystem (a tmpfs the lab mounts) and reads QEMU's open files again.
        Assert.Contains(run.Findings, f => f.Claim == "6. The original moved to another filesystem" && f.Verdict == "confirmed" && f.Observed.Contains(" to tmpfs ", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("6. After the move QEMU holds none of the moved images and no deleted file", StringComparison.Ordinal) && f.Verdict == "confirmed"
            && f.Observed.Contains("mirror-b.qcow2 among them", StringComparison.Ordinal));
        // Two Plotly.NET charts: the outage shaded on the mirror's offset, and shallow vs full as grouped columns.
        var (charts, plotlyJs) = run.Charts();
        Assert.Equal(2, charts.Count);
        Assert.Equal(["NBD server down"], NotebookRun.ShadedLabels(charts[0]));
        Assert.Equal(2, charts[1]["data"]!.AsArray().Count);
        Assert.Equal(1, plotlyJs);

        // With KeepArtifacts the chain and the copies stay, each named by its role.
        var manifest = Directory.GetFiles(run.Folder, "artifacts.json", SearchOption.AllDirectories).Single();
        var roles = JsonNode.Parse(File.ReadAllText(manifest))!["artifacts"]!.AsArray().Select(a => a!["role"]!.GetValue<string>()).ToHashSet();
        foreach (var role in new[] { "base", "vm-base", "disk", "mirror1", "mirror2-nbd", "mirror-a", "mirror-b", "vm-top", "mirror-shallow", "mirror-full" })
        {
            Assert.Contains(role, roles);
        }
        // The kept moved images came back from the tmpfs, which is unmounted.
        var artifacts = JsonNode.Parse(File.ReadAllText(manifest))!["artifacts"]!.AsArray();
        var movedBase = artifacts.Single(a => a!["role"]!.GetValue<string>() == "vm-base-moved")!["path"]!.GetValue<string>();
        Assert.EndsWith("other-fs.kept/vm-base.qcow2", movedBase, StringComparison.Ordinal);
        Assert.True(File.Exists(movedBase));
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(Path.GetDirectoryName(manifest)!, StringComparison.Ordinal));
    }
}
