using System.Globalization;

namespace LabKernel.Io;

/// <summary>
/// Repeated measurements of one point (e.g. the IOPS of one fio job at one chain depth): the values, their median
/// and their range. A difference between two points is only read when their ranges do not overlap.
/// </summary>
public sealed record Spread(IReadOnlyList<double> Values)
{
    /// <summary>The spread of <paramref name="values"/>; at least one value.</summary>
    public static Spread Of(IEnumerable<double> values)
    {
        var list = values.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("a spread needs at least one value", nameof(values));
        }
        return new Spread(list);
    }

    public int Count => Values.Count;

    public double Min => Values.Min();

    public double Max => Values.Max();

    public double Median
    {
        get
        {
            var sorted = Values.Order().ToList();
            var mid = sorted.Count / 2;
            return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        }
    }

    /// <summary>True when every value here is below every value of <paramref name="other"/>.</summary>
    public bool EntirelyBelow(Spread other) => Max < other.Min;

    /// <summary>"1234 (1100-1300, 3 runs)".</summary>
    public string ToText(string format = "0") => Count == 1
        ? $"{Median.ToString(format, CultureInfo.InvariantCulture)} (1 run)"
        : $"{Median.ToString(format, CultureInfo.InvariantCulture)} ({Min.ToString(format, CultureInfo.InvariantCulture)}-{Max.ToString(format, CultureInfo.InvariantCulture)}, {Count} runs)";
}

/// <summary>
/// Notebook 04's reverts, told apart as the document's <c>init_test.sh</c> did: after reverting the data disk to
/// snapshot k, the newest tag file on it is <c>TAG_aio_vdb_k</c> (the churn after snapshot k wrote it), and the base
/// has none.
/// </summary>
public static class RevertTags
{
    public const string Prefix = "TAG_aio_vdb_";

    /// <summary>The newest tag file snapshot <paramref name="k"/> must show ("" for the base, k = 0).</summary>
    public static string Expected(int k) => k == 0 ? "" : Prefix + k.ToString(CultureInfo.InvariantCulture);

    /// <summary>The reverts whose newest tag file is not <see cref="Expected"/>: a revert that stayed on another layer.</summary>
    public static IReadOnlyList<KeyValuePair<int, string>> Wrong(IReadOnlyDictionary<int, string> newestTagByK)
    {
        ArgumentNullException.ThrowIfNull(newestTagByK);
        return newestTagByK.Where(t => t.Value != Expected(t.Key)).OrderBy(t => t.Key).ToList();
    }
}

/// <summary>
/// The test notebook 04 states for "deeper chains cost IO": a throughput measured at the deepest chain is lower than
/// at the shallowest, in every repeat (the two ranges do not overlap). Overlapping ranges or the reverse order refute
/// it. Fewer than <see cref="MinimumRepeats"/> runs per point give no test, only a note.
/// </summary>
public static class DepthCost
{
    public const int MinimumRepeats = 3;

    /// <summary>Whether the test can be applied to these two points.</summary>
    public static bool CanTest(Spread shallow, Spread deep) => shallow.Count >= MinimumRepeats && deep.Count >= MinimumRepeats;

    /// <summary>
    /// Judges "<paramref name="metric"/> is lower at <paramref name="deepLayers"/> layers than at
    /// <paramref name="shallowLayers"/>": holds when the deep range lies entirely below the shallow one.
    /// </summary>
    public static (bool Holds, string Observed) Slower(Spread shallow, int shallowLayers, Spread deep, int deepLayers, string metric)
    {
        ArgumentNullException.ThrowIfNull(shallow);
        ArgumentNullException.ThrowIfNull(deep);
        var ratio = deep.Median / shallow.Median;
        var values = $"{metric} {deep.ToText()} at {deepLayers} layers vs {shallow.ToText()} at {shallowLayers}: median ratio {ratio.ToString("0.00", CultureInfo.InvariantCulture)}x";
        if (deep.EntirelyBelow(shallow))
        {
            return (true, $"{values}; every deep run below every shallow one");
        }
        return (false, shallow.EntirelyBelow(deep)
            ? $"{values}; the reverse: every deep run above every shallow one"
            : $"{values}; the ranges overlap, so no difference is shown");
    }
}
