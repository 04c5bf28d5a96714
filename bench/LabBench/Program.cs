namespace LabBench;

/// <summary>
/// LabNotebooks benchmarks: each section measures the lab against a baseline side by side, in one run, and
/// prints ratios. Usage: <c>dotnet run --project bench/LabBench -c Release -- [guest | warm] [block] [offline] [runner] [backends]</c>
/// (no argument: every section).
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var all = args.Length == 0;
        bool Wants(string name) => all || args.Contains(name, StringComparer.OrdinalIgnoreCase);
        var output = Console.Out;
        if (Wants("guest"))
        {
            await GuestBench.RunAsync(output);
        }
        else if (args.Contains("warm", StringComparer.OrdinalIgnoreCase))
        {
            // The warm-vs-cold part of "guest" alone.
            await GuestBench.WarmAsync(output);
        }
        if (Wants("block")) { await BlockBench.RunAsync(output); }
        if (Wants("offline")) { await OfflineBench.RunAsync(output); }
        if (Wants("runner")) { await RunnerBench.RunAsync(output); }
        if (Wants("backends")) { await BackendBench.RunAsync(output); }
        return 0;
    }
}
