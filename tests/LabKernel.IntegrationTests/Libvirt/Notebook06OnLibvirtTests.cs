namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// Notebook 06 through `lab run` on the libvirt backend (a lab-made domain). Apart from the other notebook tests
/// because it needs libvirtd, which lane A does not use; its own domain only, so beside lane B (see <see cref="Lanes"/>).
/// </summary>
[Trait(Lanes.Name, Lanes.BesideB)]
public sealed class Notebook06OnLibvirtTests
{
    [Fact]
    public async Task Given_notebook_06_on_libvirt_When_run_Then_libvirts_refusal_to_revert_an_external_snapshot_is_recorded_as_the_document_says()
    {
        using var run = await Notebooks.NotebookRun.RunAsync("06-snapshot-kinds", "WriterLines", "2000000", "Backend", "libvirt");

        Assert.True(run.ExitCode == 0, run.FirstError());
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" || f.Verdict == "refuted" && f.Claim.StartsWith("Reverting the WithMemory", StringComparison.Ordinal),
            $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        // libvirt's own refusal, as the LibvirtException of virDomainRevertToSnapshot carries it.
        var refused = run.Findings.Single(f => f.Claim == "libvirt cannot revert to an external snapshot (4)");
        Assert.Equal("confirmed", refused.Verdict);
        Assert.StartsWith("libvirt virDomainRevertToSnapshot on domain '", refused.Observed, StringComparison.Ordinal);
        Assert.Contains("not supported yet", refused.Observed, StringComparison.Ordinal);
        Assert.Equal(5, run.Findings.Count(f => f.Claim.StartsWith("Reverting the ", StringComparison.Ordinal)));
        // (2) judged by libvirt's own state of the domain, sampled through each call: the internal snapshot read
        // suspended (so the sampling sees a real pause), the disk-only one never.
        var barely = run.Findings.Single(f => f.Claim == "An external disk-only snapshot barely pauses the guest (2)");
        Assert.Equal("confirmed", barely.Verdict);
        Assert.Matches(@"^suspended \(libvirt's domain state\) 0 ms during the disk-only snapshot, [1-9]\d* ms during the internal one", barely.Observed);
    }
}
