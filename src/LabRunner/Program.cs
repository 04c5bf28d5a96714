using LabRunner.Commands;

namespace LabRunner;

public static class Program
{
    public static Task<int> Main(string[] args)
    {
        // First of all, before .NET sets up its signal handling: a SIGINT ignored by inheritance would be lost.
        Notebooks.RunInterruption.StopIgnoringInterrupt();
        // LabKernel writes nothing to the console; its warnings with no caller to return to are printed here.
        LabKernel.Host.LabWarnings.Raised += message => Console.Error.WriteLine("lab: " + message);
        return LabCli.RunAsync(args);
    }
}
