namespace LabBench;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        await Task.CompletedTask;
        if (args.Length == 0 || args.Contains("block", StringComparer.OrdinalIgnoreCase)) { await BlockBench.RunAsync(Console.Out); }
        if (args.Length == 0 || args.Contains("runner", StringComparer.OrdinalIgnoreCase)) { await RunnerBench.RunAsync(Console.Out); }
        return 0;
    }
}
