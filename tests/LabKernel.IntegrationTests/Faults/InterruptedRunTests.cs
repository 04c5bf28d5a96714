using LabKernel.Host;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// `lab run` interrupted as a user does it, Ctrl-C (SIGINT) while the guest writes: it stops with a non-zero exit,
/// no QEMU is left running, the executed notebook written so far is valid nbformat, and every image checks clean.
/// </summary>
public sealed class InterruptedRunTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Given_lab_run_on_a_guest_When_it_gets_SIGINT_Then_it_stops_leaving_no_QEMU_a_valid_partial_notebook_and_clean_images()
    {
        int? qemu = null;
        using var run = await NotebookRun.RunAsProcessAsync("01-live-snapshot-integrity", async lab =>
        {
            var (found, _) = await Poll.UntilAsync(
                _ => Task.FromResult(KilledKernelTests.FindGuestQemu() is { } q ? (true, q, "started") : (false, default((int, int)), "no QEMU for nb01 yet")),
                "the notebook's guest QEMU to start", TimeSpan.FromMinutes(5));
            qemu = found;
            await ProcessRunner.RunAsync("kill", ["-INT", lab.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }, "Count", "4000000", "SnapshotAfterLines", "3999000");

        output.WriteLine($"exit {run.ExitCode}: {run.Output.Trim()}");
        Assert.True(run.ExitCode == 130, $"exit {run.ExitCode} after SIGINT (130 expected): {run.Output}");
        await Poll.UntilAsync(_ => Task.FromResult((!Directory.Exists($"/proc/{qemu}"), $"pid {qemu} still there")),
            "the guest's QEMU to be gone after the interrupt", TimeSpan.FromSeconds(60));
        await run.AssertValidNbformatAsync();
        await run.AssertLeftCleanAsync();
    }
}
