using LabKernel.GuestAgent;
using LabKernel.Host;

namespace LabKernel.Backends;

/// <summary>Waiting for a guest to come back from a reboot, the same on every backend.</summary>
internal static class GuestReboot
{
    private const string BootIdPath = "/proc/sys/kernel/random/boot_id";

    /// <summary>
    /// How long each agent command of a boot_id read waits for its answer while a reboot is awaited. A command the old
    /// boot took in just as it went down is never answered: with the agent's own limit (30 s) each such command cost
    /// 30 s, and a lost read is followed by its close, lost too (notebook 03's reboot came "back in 70.8 s" instead of
    /// about 5 in some runs). A new boot's agent answers a small read in well under this, even on a loaded host.
    /// </summary>
    internal static readonly TimeSpan ProbeCommandLimit = TimeSpan.FromSeconds(5);

    public static async Task<string> BootIdAsync(IGuestAgent agent, CancellationToken cancellationToken, TimeSpan? commandTimeout = null) =>
        System.Text.Encoding.ASCII.GetString(await agent.ReadFileAsync(BootIdPath, commandTimeout, cancellationToken).ConfigureAwait(false)).Trim();

    /// <summary>Asks for the reboot, then waits for an agent answer from a new boot within <paramref name="timeout"/>.</summary>
    public static Task<TimeSpan> RunAsync(IGuestAgent agent, Func<Task> request, Func<TimeSpan, Task> waitForAgent, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(agent, request, waitForAgent, timeout, ProbeCommandLimit, cancellationToken);

    /// <summary>As above, each agent command of the boot_id reads after the request limited to <paramref name="probeCommandLimit"/>.</summary>
    internal static async Task<TimeSpan> RunAsync(IGuestAgent agent, Func<Task> request, Func<TimeSpan, Task> waitForAgent, TimeSpan timeout, TimeSpan probeCommandLimit, CancellationToken cancellationToken)
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
                if (await BootIdAsync(agent, ct, probeCommandLimit < agentLimit ? probeCommandLimit : agentLimit).ConfigureAwait(false) != before)
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
