using System.Net;
using System.Text;
using LabKernel.Block;
using LabKernel.Images;

namespace LabNotebooks;

/// <summary>Backing chains as small HTML diagrams for notebooks and reports, base on the left.</summary>
public static class ChainHtml
{
    /// <summary>
    /// QEMU's live view of a disk's chain (<see cref="LiveChain"/>): one box per layer with its file, node name and
    /// format, the active layer highlighted.
    /// </summary>
    public static string ToHtml(this LiveChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var sb = new StringBuilder("<div class=\"lab-live-chain\" style=\"display:flex;gap:6px;align-items:center;font-family:monospace\">");
        var first = true;
        foreach (var l in chain.Layers.Reverse())
        {
            if (!first)
            {
                sb.Append("<span>&larr;</span>");
            }
            first = false;
            var active = ReferenceEquals(l, chain.Active);
            sb.Append("<div style=\"border:1px solid #888;border-radius:4px;padding:4px 8px;")
              .Append(active ? "background:#e8f4ff;font-weight:bold" : "")
              .Append("\"><div>").Append(Enc(l.Name)).Append("</div><div style=\"color:#666\">")
              .Append(Enc(l.NodeName)).Append(" · ").Append(Enc(l.Format))
              .Append(active ? " · active" : "").Append("</div></div>");
        }
        return sb.Append("</div>").ToString();
    }

    /// <summary>
    /// qemu-img's view of a chain (<see cref="BackingChain"/>): one box per layer, base on the left, active on the
    /// right, each with its format and virtual/allocated sizes. All text is HTML-escaped.
    /// </summary>
    public static string ToHtml(this BackingChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var sb = new StringBuilder();
        sb.Append("<div class=\"lab-backing-chain\" style=\"display:flex;align-items:center;gap:6px;font-family:sans-serif;font-size:13px\">");
        var ordered = chain.Layers.Select((l, depth) => (l, depth)).Reverse().ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var (layer, depth) = ordered[i];
            if (i > 0)
            {
                sb.Append("<span class=\"lab-chain-arrow\" title=\"backs\">&larr;</span>");
            }
            var border = depth == 0 ? "#2a7" : "#888";
            sb.Append("<div class=\"lab-chain-layer\" data-depth=\"").Append(depth)
              .Append("\" title=\"").Append(Enc(layer.Filename))
              .Append("\" style=\"border:2px solid ").Append(border).Append(";border-radius:4px;padding:4px 8px\">");
            sb.Append("<div style=\"font-weight:bold\">").Append(Enc(layer.Name)).Append("</div>");
            sb.Append("<div>").Append(Enc(layer.Format)).Append(" · depth ").Append(depth)
              .Append(depth == 0 ? " (active)" : depth == chain.Layers.Count - 1 ? " (base)" : "").Append("</div>");
            sb.Append("<div>virtual ").Append(Enc(SizeText.Format(layer.VirtualSize)))
              .Append(" · allocated ").Append(Enc(layer.ActualSize is { } a ? SizeText.Format(a) : "?")).Append("</div>");
            if (layer.BackingFilename is { } b)
            {
                sb.Append("<div style=\"color:#666\">backing ").Append(Enc(b))
                  .Append(" (").Append(layer.BackingNameKind.ToString().ToLowerInvariant()).Append(")</div>");
            }
            if (layer.Snapshots.Count > 0)
            {
                sb.Append("<div style=\"color:#666\">").Append(layer.Snapshots.Count).Append(" internal snapshot(s)</div>");
            }
            sb.Append("</div>");
        }
        sb.Append("</div>");
        return sb.ToString();
    }

    private static string Enc(string? s) => WebUtility.HtmlEncode(s ?? "");
}
