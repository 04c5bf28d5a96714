namespace LabKernel.Host;

/// <summary>
/// How long <see cref="Poll"/> waits between tries: <see cref="Initial"/> first, then each wait
/// <see cref="Factor"/> times the one before, never more than <see cref="Max"/>. A wait that starts often and
/// slows down takes a ready thing at once without flooding a slow one.
/// </summary>
public sealed record Backoff
{
    public Backoff(TimeSpan initial, TimeSpan max, double factor = 2)
    {
        if (initial < TimeSpan.Zero || max < initial || !(factor >= 1))
        {
            throw new ArgumentException($"a back-off needs 0 <= initial <= max and factor >= 1 (got {initial}, {max}, {factor})");
        }
        Initial = initial;
        Max = max;
        Factor = factor;
    }

    /// <summary>The first wait.</summary>
    public TimeSpan Initial { get; }

    /// <summary>The longest wait.</summary>
    public TimeSpan Max { get; }

    /// <summary>How much each wait grows over the one before.</summary>
    public double Factor { get; }

    /// <summary>50 ms, doubling, up to 1 s.</summary>
    public static Backoff Default { get; } = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1));

    /// <summary>The same wait every time (sampling at a fixed rate).</summary>
    public static Backoff Every(TimeSpan interval) => new(interval, interval, 1);

    /// <summary>The wait after <paramref name="delay"/>.</summary>
    public TimeSpan Next(TimeSpan delay) => TimeSpan.FromTicks((long)Math.Min(delay.Ticks * Factor, Max.Ticks));
}
