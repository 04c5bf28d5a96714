using LabKernel.Host;

namespace LabKernel.Backends;

/// <summary>
/// What the readings taken through a snapshot call (<see cref="Sampler{T}"/>) say about the guest's pause during it:
/// the longest it went without answering pings, and how long the backend showed it suspended. Only the call's own
/// window counts; a loaded host's gaps before or after it are not the snapshot's.
/// </summary>
public static class PauseEvidence
{
    /// <summary>
    /// The longest part of [<paramref name="start"/>, <paramref name="end"/>] between two answers (or between the
    /// window's edge and the answer nearest it): the longest the guest went without answering during the operation.
    /// <paramref name="answers"/> are in order; an answer before the start and one after the end close the window's
    /// edges. Without an answer on each side, the whole window counts as silent (nothing shows the guest answered).
    /// </summary>
    public static TimeSpan LongestSilenceWithin(IReadOnlyList<DateTimeOffset> answers, DateTimeOffset start, DateTimeOffset end)
    {
        ArgumentNullException.ThrowIfNull(answers);
        if (end <= start)
        {
            return TimeSpan.Zero;
        }
        if (answers.Count == 0 || answers[0] > start || answers[^1] < end)
        {
            return end - start;
        }
        var longest = TimeSpan.Zero;
        for (var i = 1; i < answers.Count; i++)
        {
            var from = answers[i - 1] > start ? answers[i - 1] : start;
            var to = answers[i] < end ? answers[i] : end;
            if (to - from > longest)
            {
                longest = to - from;
            }
        }
        return longest;
    }

    /// <summary>
    /// How long <paramref name="readings"/> (in order, each at the time its answer came) showed the guest suspended
    /// within [<paramref name="from"/>, <paramref name="to"/>]: a suspension counts from its first reading to the
    /// first reading of the guest running again (or the window's end).
    /// </summary>
    public static TimeSpan SuspendedWithin(IReadOnlyList<Reading<bool>> readings, DateTimeOffset from, DateTimeOffset to)
    {
        ArgumentNullException.ThrowIfNull(readings);
        var total = TimeSpan.Zero;
        DateTimeOffset? since = null;
        foreach (var (at, suspended) in readings)
        {
            if (suspended)
            {
                since ??= at;
            }
            else if (since is { } s)
            {
                total += Overlap(s, at, from, to);
                since = null;
            }
        }
        if (since is { } open)
        {
            total += Overlap(open, to, from, to);
        }
        return total;
    }

    private static TimeSpan Overlap(DateTimeOffset a, DateTimeOffset b, DateTimeOffset from, DateTimeOffset to)
    {
        var start = a > from ? a : from;
        var end = b < to ? b : to;
        return end > start ? end - start : TimeSpan.Zero;
    }
}
