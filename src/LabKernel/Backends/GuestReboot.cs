using LabKernel.GuestAgent;
using LabKernel.Host;

namespace LabKernel.Backends;

/// <summary>Waiting for a guest to come back from a reboot, the same on every backend.</summary>
internal static class GuestReboot
{
    private const string BootIdPath = "/proc/sys/kernel/random/boot_id";

    public static async Task<string> BootIdAsync(IGuestAgent agent, CancellationToken cancellationToken) =>
        System.Text.Encoding.ASCII.GetString(await agent.ReadFileAsync(BootIdPath, cancellationToken).ConfigureAwait(false)).Trim();

    /// <summary>Asks for the reboot, then waits for an agent answer from a new boot within <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan> RunAsync(IGuestAgent agent, Func<Task> request, Func<TimeSpan, Task> waitForAgent, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var before = await BootIdAsync(agent, cancellationToken).ConfigureAwait(false);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await request().ConfigureAwait(false);
        var last = "the old boot still answers";
        var left = timeout - sw.Elapsed;
        return await Poll.UntilAsync(async ct =>
        {
            var agentLimit = timeout - sw.Elapsed;
            if (agentLimit <= TimeSpan.Zero)
            {
                return (false, TimeSpan.Zero, last);
            }
            try
            {
                await waitForAgent(agentLimit).ConfigureAwait(false);
                if (await BootIdAsync(agent, ct).ConfigureAwait(false) != before)
                {
                    return (true, sw.Elapsed, "");
                }
            }
            catch (LabException e) when (e is not GuestNotRunningException && (e is not LabTimeoutException || sw.Elapsed < timeout))
            {
                last = e.Message;
            }
            return (false, TimeSpan.Zero, last);
        }, "the guest to come back from its reboot (an agent answer with a new boot_id)", left > TimeSpan.Zero ? left : TimeSpan.Zero,
            new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
