using LabKernel.GuestAgent;

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
        var delay = TimeSpan.FromMilliseconds(100);
        var last = "the old boot still answers";
        while (true)
        {
            var left = timeout - sw.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new LabTimeoutException("the guest to come back from its reboot (an agent answer with a new boot_id)", timeout, last);
            }
            try
            {
                await waitForAgent(left).ConfigureAwait(false);
                if (await BootIdAsync(agent, cancellationToken).ConfigureAwait(false) != before)
                {
                    return sw.Elapsed;
                }
            }
            catch (LabException e) when (e is not GuestNotRunningException && (e is not LabTimeoutException || sw.Elapsed < timeout))
            {
                last = e.Message;
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }
}
