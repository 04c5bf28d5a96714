using Microsoft.Extensions.Time.Testing;

namespace LabKernel.Tests.Host;

/// <summary>Moving a <see cref="FakeTimeProvider"/> for waits whose timer starts after some real I/O.</summary>
internal static class FakeTime
{
    /// <summary>
    /// Moves <paramref name="time"/> forward by <paramref name="step"/> until <paramref name="task"/> ends, giving the
    /// work under test a moment of real time between steps to reach its timer (a socket write, a continuation). The
    /// wait under test never waits for its real limit; at most <paramref name="steps"/> steps are taken, so a wait
    /// that ignores the clock fails the test instead of hanging it.
    /// </summary>
    public static async Task AdvanceUntilDoneAsync(this FakeTimeProvider time, Task task, TimeSpan step, int steps = 1000)
    {
        for (var i = 0; i < steps && !task.IsCompleted; i++)
        {
            time.Advance(step);
            await Task.WhenAny(task, Task.Delay(TimeSpan.FromMilliseconds(1), TimeProvider.System));
        }
        Assert.True(task.IsCompleted, $"still waiting after {steps} steps of {step} on the fake clock");
    }
}
