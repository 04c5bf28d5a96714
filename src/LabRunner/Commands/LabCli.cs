using System.CommandLine;
using LabKernel;
using LabRunner.Notebooks;

namespace LabRunner.Commands;

/// <summary>The `lab` command line: each area adds its own subcommands.</summary>
public static class LabCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("LabNotebooks: live-snapshot experiments on QEMU and libvirt, run and reported.");
        root.Subcommands.Add(DoctorCommand.Create());
        root.Subcommands.Add(GuestCommand.Create());
        root.Subcommands.Add(CleanCommand.Create());
        RunCommand.Register(root);
        root.Subcommands.Add(SweepCommand.Create());
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var parse = Build().Parse(args);
            if (parse.Errors.Count > 0)
            {
                // A mistyped command line is a one-line error and exit 2, not a page of help.
                var command = parse.CommandResult.Command;
                var name = command is RootCommand ? "lab" : $"lab {command.Name}";
                Console.Error.WriteLine($"lab: {parse.Errors[0].Message} (see `{name} --help`)");
                return 2;
            }
            // `lab run` and `lab sweep` handle Ctrl-C and SIGTERM itself (RunInterruption), and its kernel is stopped by it.
            // System.CommandLine's own handling cancels the run's token and returns 130 two seconds later whether
            // or not the run has stopped its kernel and guests by then (a run that stopped sooner exited 1).
            var ownSignals = parse.CommandResult.Command.Name is "run" or "sweep" or KernelClient.KernelCommandName;
            // Its default exception handler prints a stack trace: a LabException is a one-line error instead (below).
            var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
            if (ownSignals)
            {
                configuration.ProcessTerminationTimeout = null;
            }
            return await parse.InvokeAsync(configuration).ConfigureAwait(false);
        }
        catch (LabException e)
        {
            Console.Error.WriteLine($"lab: {e.Message}");
            return e is LabUsageException ? 2 : 1;
        }
        catch (Exception e) when (e is not OperationCanceledException && Environment.GetEnvironmentVariable("LAB_DEBUG") != "1")
        {
            // A fault of the lab's own, not of the input: one line naming it; LAB_DEBUG=1 lets the stack trace through.
            Console.Error.WriteLine($"lab: internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} (LAB_DEBUG=1 shows where)");
            return 1;
        }
    }
}
