using System.Text;
using System.Text.Json;

namespace LabKernel.Images;

/// <summary>How <see cref="BackingChain.ToText"/> names each layer.</summary>
public enum ChainPathStyle
{
    /// <summary>File names only: <c>base.qcow2 &lt;- overlay1.qcow2</c>.</summary>
    FileName,

    /// <summary>The names as qemu-img reported them (full paths when the chain was read from a full path).</summary>
    FullPath,
}

/// <summary>
/// A backing chain as <c>qemu-img info --backing-chain --output=json</c> reports it: layers from the active image
/// (depth 0) down to the base (the last layer). Depth numbers match <c>qemu-img map</c>'s <c>depth</c>.
/// </summary>
public sealed record BackingChain(IReadOnlyList<ImageInfo> Layers)
{
    /// <summary>The image guests write to (depth 0).</summary>
    public ImageInfo Active => Layers[0];

    /// <summary>The bottom layer, which has no backing file.</summary>
    public ImageInfo Base => Layers[^1];

    public int Count => Layers.Count;

    public ImageInfo this[int depth] => Layers[depth];

    /// <summary>Parses the JSON array of <c>qemu-img info --backing-chain --output=json FILE</c>.</summary>
    public static BackingChain Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var layers = new List<ImageInfo>();
        if (root.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in root.EnumerateArray())
            {
                layers.Add(ImageInfo.FromJson(e));
            }
        }
        else
        {
            layers.Add(ImageInfo.FromJson(root));
        }
        if (layers.Count == 0)
        {
            throw new FormatException("qemu-img info --backing-chain returned no layers");
        }
        return new BackingChain(layers);
    }

    /// <summary>
    /// One line, base first: <c>base.qcow2 &lt;- overlay1.qcow2 &lt;- overlay2.qcow2 (active)</c>.
    /// </summary>
    public string ToText(ChainPathStyle style = ChainPathStyle.FileName)
    {
        var names = Layers.Reverse().Select(l => style == ChainPathStyle.FileName ? l.Name : l.Filename);
        return string.Join(" <- ", names) + " (active)";
    }

    public override string ToString() => ToText();

    /// <summary>
    /// Compares this chain (qemu-img's view from the image headers) with another view of the same chain, e.g. the
    /// file names QEMU reports live through <c>query-block</c> / <c>query-named-block-nodes</c>, given active first.
    /// Names match when their full paths are equal, or, when either side is relative, when the shorter path is a
    /// trailing part of the longer one.
    /// </summary>
    public ChainAgreement Compare(IReadOnlyList<string> otherActiveToBase)
    {
        ArgumentNullException.ThrowIfNull(otherActiveToBase);
        var ours = Layers.Select(l => l.Filename).ToList();
        var n = Math.Min(ours.Count, otherActiveToBase.Count);
        for (var depth = 0; depth < n; depth++)
        {
            if (!SameFile(ours[depth], otherActiveToBase[depth]))
            {
                return new ChainAgreement(false, depth, ours[depth], otherActiveToBase[depth],
                    $"chains differ at depth {depth}: qemu-img has {ours[depth]}, the other view has {otherActiveToBase[depth]}");
            }
        }
        if (ours.Count != otherActiveToBase.Count)
        {
            var expected = n < ours.Count ? ours[n] : null;
            var actual = n < otherActiveToBase.Count ? otherActiveToBase[n] : null;
            return new ChainAgreement(false, n, expected, actual,
                $"chains differ in length: qemu-img sees {ours.Count} layer(s), the other view {otherActiveToBase.Count}; " +
                $"first difference at depth {n}: qemu-img has {expected ?? "(nothing)"}, the other view has {actual ?? "(nothing)"}");
        }
        return new ChainAgreement(true, null, null, null, $"chains agree ({ours.Count} layer(s))");
    }

    internal static bool SameFile(string a, string b)
    {
        if (string.Equals(a, b, StringComparison.Ordinal))
        {
            return true;
        }
        var ka = ImageInfo.ClassifyBackingName(a);
        var kb = ImageInfo.ClassifyBackingName(b);
        if (ka == BackingNameKind.Protocol || kb == BackingNameKind.Protocol)
        {
            return false;
        }
        if (ka == BackingNameKind.Absolute && kb == BackingNameKind.Absolute)
        {
            return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
        }
        var pa = Components(a);
        var pb = Components(b);
        var (shorter, longer) = pa.Count <= pb.Count ? (pa, pb) : (pb, pa);
        return shorter.Count > 0 && longer.Skip(longer.Count - shorter.Count).SequenceEqual(shorter, StringComparer.Ordinal);
    }

    private static List<string> Components(string p) =>
        p.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(c => c != ".").ToList();
}

/// <summary>Whether two views of a backing chain agree, and where they first differ.</summary>
/// <param name="Agrees">True when both list the same files in the same order.</param>
/// <param name="FirstDifferenceDepth">Depth (0 = active) of the first disagreement; null when they agree.</param>
/// <param name="Expected">qemu-img's file at that depth; null when its chain is shorter.</param>
/// <param name="Actual">The other view's file at that depth; null when its chain is shorter.</param>
/// <param name="Summary">One sentence for reports.</param>
public sealed record ChainAgreement(bool Agrees, int? FirstDifferenceDepth, string? Expected, string? Actual, string Summary);

/// <summary>Byte counts in binary units, as qemu-img prints them.</summary>
public static class SizeText
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>Binary units like qemu-img prints them: 4 MiB, 320 KiB, 1.5 GiB.</summary>
    public static string Format(long bytes)
    {
        double v = bytes;
        var u = 0;
        while (Math.Abs(v) >= 1024 && u < Units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0
            ? $"{bytes} B"
            : v.ToString(Math.Abs(v - Math.Round(v)) < 0.005 ? "0" : "0.##", System.Globalization.CultureInfo.InvariantCulture) + " " + Units[u];
    }
}
