using LabRunner.Commands;

namespace LabRunner;

public static class Program
{
    public static Task<int> Main(string[] args) => LabCli.RunAsync(args);
}
