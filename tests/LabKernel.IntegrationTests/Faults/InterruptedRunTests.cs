using LabKernel.Host;
using LabKernel.IntegrationTests.Notebooks;
using LabKernel.Processes;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// `lab run` interrupted as a user does it, Ctrl-C (SIGINT), at two moments: while the guest boots (inside
/// `Lab.StartAsync`) and while the guest's writer writes. It stops with exit 130, no QEMU is left running, the executed
/// notebook written so far is valid nbformat and names the cell that was interrupted, and every image checks clean.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class InterruptedRunTests(ITestOutputHelper output)
{
    // Notebook 01's cells, found by their source in the executed notebook `lab run` saves after every cell.
    private const string StartCell = "Lab.StartAsync";
    private const string WriterCell = "SequenceWriter.StartAsync";
    private const string WaitCell = "writer.WaitForExitAsync";

    [Theory]
    [InlineData("boot")]
    [InlineData("writing")]
    public async Task Given_lab_run_on_a_guest_When_it_gets_SIGINT_Then_it_stops_leaving_no_QEMU_a_valid_partial_notebook_and_clean_images(string moment)
    {
        int? qemu = null;
        string? runtime = null;
        // The writer's cell returns once the guest's writer has flushed 20,000 lines (read from its progress file in
        // the guest) and the snapshot is taken; the next cell then waits for the rest of 4,000,000 lines.
        // The boot case needs a boot to interrupt: a warm start (a restore from a saved state) is over in under a second.
        var environment = moment == "boot" ? new Dictionary<string, string> { ["LAB_WARM"] = "0" } : [];
        using var run = await NotebookRun.RunAsProcessAsync("01-live-snapshot-integrity", environment, async (lab, executed) =>
        {
            var (found, _) = await Poll.UntilAsync(
                _ => Task.FromResult(KilledKernelTests.FindGuestQemu(lab) is { } q ? (true, q, "started") : (false, default((int, int)), "no QEMU for nb01 yet")),
                "the notebook's guest QEMU to start", TimeSpan.FromMinutes(5));
            qemu = found;
            runtime = RuntimeFolderOf(found);
            if (moment == "writing")
            {
                // The guest is writing from the moment the writer's cell ends ok until the writer's 4,000,000th line.
                await Poll.UntilAsync(_ =>
                {
                    var status = NotebookRun.CellStatus(executed, WriterCell);
                    if (status is not (null or "ok"))
                    {
                        throw new InvalidOperationException($"the writer's cell ended '{status}' before the interrupt");
                    }
                    return Task.FromResult((status == "ok", status ?? "the writer's cell has not finished"));
                }, "the writer's cell to end with the guest writing", TimeSpan.FromMinutes(10));
            }
            await ProcessRunner.RunAsync("kill", ["-INT", lab.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }, "Count", "4000000", "SnapshotAfterLines", "20000");

        output.WriteLine($"exit {run.ExitCode}: {run.Output.Trim()}");
        Assert.True(run.ExitCode == 130, $"exit {run.ExitCode} after SIGINT (130 expected): {run.Output}");
        if (moment == "writing")
        {
            output.WriteLine($"writer's cell: {run.CellResult(WriterCell)}");
            Assert.Equal("ok", run.CellStatus(WriterCell));
            // The cell waiting for the writer's end was the one interrupted: the writer had not finished.
            Assert.Equal("interrupted", run.CellStatus(WaitCell));
        }
        else
        {
            Assert.Equal("interrupted", run.CellStatus(StartCell));
            Assert.Equal("not-run", run.CellStatus(WriterCell));
        }
        await Poll.UntilAsync(_ => Task.FromResult((!Directory.Exists($"/proc/{qemu}"), $"pid {qemu} still there")),
            "the guest's QEMU to be gone after the interrupt", TimeSpan.FromSeconds(60));
        // Its runtime folder (sockets, console log) goes with it, as a normal end takes it: the exiting kernel removes
        // it once QEMU is gone.
        await Poll.UntilAsync(_ => Task.FromResult((!Directory.Exists(runtime), $"{runtime} still there")),
            "the guest's runtime folder to be removed after the interrupt", TimeSpan.FromSeconds(30));
        await run.AssertValidNbformatAsync();
        await run.AssertLeftCleanAsync();
    }

    /// <summary>The runtime folder of a lab QEMU: where its QMP socket is (<c>-qmp unix:FOLDER/qmp.sock,...</c>).</summary>
    private static string RuntimeFolderOf(int qemu)
    {
        var argv = File.ReadAllText($"/proc/{qemu}/cmdline").Split('\0');
        var qmp = argv.SkipWhile(a => a != "-qmp").Skip(1).First();
        return Path.GetDirectoryName(qmp["unix:".Length..].Split(',')[0])!;
    }
}
