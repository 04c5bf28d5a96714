using System.Globalization;

namespace LabKernel.Integrity;

/// <summary>
/// What a file that should hold 1..N looked like: how far it is a valid sequence, whether it is complete, and
/// what follows the valid prefix (nothing, a torn last line, zero bytes from a crash, or real damage).
/// </summary>
public sealed record SequenceCheck(
    long Expected,
    long Lines,
    long ValidPrefix,
    bool Complete,
    bool TornLastLine,
    string? TornText,
    long TrailingZeroBytes,
    long? FirstBadLine,
    string? FirstBadText)
{
    /// <summary>
    /// The file is 1..k for some k, followed at most by a torn last line (a prefix of k+1's digits) and/or zero
    /// bytes: what a crash-consistent copy of a running writer may look like. Nothing out of order, no gaps.
    /// </summary>
    public bool ConsistentPrefix => FirstBadLine is null;

    /// <summary>
    /// An interrupted sequence: 1..k with 0 &lt; k &lt; <see cref="Expected"/>, consistent (<see cref="ConsistentPrefix"/>).
    /// What a layer frozen while the writer ran must hold (notebooks 01 and 02): false for a layer holding none of the
    /// lines (k = 0), all of them (the snapshot came after the writer ended), or a damaged line.
    /// </summary>
    public bool InterruptedPrefix => ValidPrefix > 0 && ValidPrefix < Expected && ConsistentPrefix;

    /// <summary>
    /// At least <paramref name="lines"/> valid lines (1..k with k &gt;= lines), consistent: a layer frozen after the
    /// writer had flushed that many lines, with the page cache flushed first (notebook 06's frozen snapshot), must hold them.
    /// </summary>
    public bool HoldsAtLeast(long lines) => ValidPrefix >= lines && ConsistentPrefix;

    /// <summary>One line for findings tables.</summary>
    public string Summary =>
        Complete ? $"complete: 1..{Expected}"
        : FirstBadLine is { } bad ? $"damaged at line {bad}: '{FirstBadText}' after a valid prefix 1..{ValidPrefix}"
        : $"consistent prefix 1..{ValidPrefix} of {Expected}" + (TornLastLine ? $", torn last line '{TornText}'" : "") +
          (TrailingZeroBytes > 0 ? $", {TrailingZeroBytes} trailing zero bytes" : "");
}

/// <summary>Checks a file's content against the sequence 1..N (judge.sh of 000_dd5fc575f1b82753.txt, made exact).</summary>
public static class SequenceChecker
{
    /// <summary>The size in bytes of the lines <c>1\n</c> .. <c>{lines}\n</c>: what a writer has written after that many.</summary>
    public static long BytesOf(long lines)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lines);
        long total = 0;
        long low = 1;
        for (var digits = 1; low <= lines; digits++, low *= 10)
        {
            var high = Math.Min(lines, low * 10 - 1);
            total += (high - low + 1) * (digits + 1);
        }
        return total;
    }

    public static SequenceCheck Check(ReadOnlySpan<byte> content, long expected)
    {
        // Zero bytes at the end: the file size was extended but its data blocks never reached the disk.
        var end = content.Length;
        while (end > 0 && content[end - 1] == 0)
        {
            end--;
        }
        var zeros = content.Length - end;
        var text = content[..end];

        long lines = 0;
        long valid = 0;
        long? firstBad = null;
        string? badText = null;
        string? torn = null;
        var pos = 0;
        while (pos < text.Length)
        {
            var nl = text[pos..].IndexOf((byte)'\n');
            var last = nl < 0;
            var line = last ? text[pos..] : text.Slice(pos, nl);
            pos = last ? text.Length : pos + nl + 1;
            lines++;
            var next = valid + 1;
            if (!last && firstBad is null && IsNumber(line, next))
            {
                valid = next;
                continue;
            }
            if (last && firstBad is null)
            {
                // No newline after it: a complete number still counts, a prefix of the next number is torn.
                var s = System.Text.Encoding.ASCII.GetString(line);
                var nextText = next.ToString(CultureInfo.InvariantCulture);
                if (s == nextText)
                {
                    valid = next;
                    continue;
                }
                if (nextText.StartsWith(s, StringComparison.Ordinal) && s.Length > 0)
                {
                    torn = s;
                    continue;
                }
            }
            if (firstBad is null)
            {
                firstBad = lines;
                badText = System.Text.Encoding.ASCII.GetString(line[..Math.Min(line.Length, 40)]);
            }
        }
        var complete = firstBad is null && torn is null && zeros == 0 && valid == expected && lines == expected;
        if (firstBad is null && valid > expected)
        {
            firstBad = expected + 1;
            badText = (expected + 1).ToString(CultureInfo.InvariantCulture);
        }
        return new SequenceCheck(expected, lines, valid, complete, torn is not null, torn, zeros, firstBad, badText);
    }

    private static bool IsNumber(ReadOnlySpan<byte> line, long value)
    {
        Span<byte> buf = stackalloc byte[24];
        return value.TryFormat(buf, out var n, default, CultureInfo.InvariantCulture) && line.SequenceEqual(buf[..n]);
    }
}
