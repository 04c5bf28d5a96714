using LabRunner.Commands;

namespace LabRunner.Cli;

/// <summary>The lab program's entry point: the top layer, above Commands (docs/ARCHITECTURE.md).</summary>
public static class Program
{
    public static Task<int> Main(string[] args)
    {
        // First of all, before .NET sets up its signal handling: a SIGINT ignored by inheritance would be lost.
        LabRunner.Notebooks.RunInterruption.StopIgnoringInterrupt();
        // LabKernel writes nothing to the console; its warnings with no caller to return to are printed here.
        LabKernel.Host.LabWarnings.Raised += message => Console.Error.WriteLine("lab: " + message);
        return LabCli.RunAsync(args);
    }
}
