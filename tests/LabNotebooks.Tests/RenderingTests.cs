using LabKernel.Block;
using LabKernel.Experiments;
using LabKernel.Images;
using LabKernel.Journal;

namespace LabNotebooks.Tests;

public sealed class RenderingTests
{
    private static BackingChain Chain() => BackingChain.Parse(Samples.Read("info-chain.json"));

    private static LiveChain Live() => new("disk0", "/machine/peripheral/disk0-dev/virtio-backend",
    [
        new LiveLayer("disk0-snap2", "/i/overlay2.qcow2", "qcow2", "/i/overlay1.qcow2"),
        new LiveLayer("#block301", "/i/overlay1.qcow2", "qcow2", "base.qcow2"),
        new LiveLayer("#block122", "/i/base.qcow2", "qcow2", null),
    ]);

    [Fact]
    public void Given_a_three_layer_chain_When_rendered_as_html_Then_it_matches_the_stored_expectation()
    {
        Assert.Equal(Samples.Read("chain.expected.html").TrimEnd('\n'), Chain().ToHtml());
    }

    [Fact]
    public void Given_a_layer_name_with_markup_When_rendered_as_html_Then_it_is_escaped()
    {
        var evil = Chain().Layers[0] with { Filename = "/tmp/<script>alert('x')</script>&.qcow2", Format = "qcow2<b>" };
        var html = new BackingChain([evil, .. Chain().Layers.Skip(1)]).ToHtml();

        Assert.DoesNotContain("<script>", html);
        Assert.DoesNotContain("qcow2<b>", html);
        Assert.Contains("&lt;script&gt;", html);
        Assert.Contains("&amp;", html);
    }

    [Fact]
    public void Given_html_of_a_chain_Then_each_layer_shows_format_virtual_and_allocated_size_base_on_the_left()
    {
        var html = Chain().ToHtml();

        var basePos = html.IndexOf("data-depth=\"2\"", StringComparison.Ordinal);
        var activePos = html.IndexOf("data-depth=\"0\"", StringComparison.Ordinal);
        Assert.True(basePos >= 0 && activePos > basePos);
        Assert.Contains("virtual 4 MiB", html);
        Assert.Contains("allocated 332 KiB", html);
        Assert.Contains("(active)", html);
        Assert.Contains("(base)", html);
        Assert.Contains("backing base.qcow2 (relative)", html);
    }

    [Fact]
    public void Given_a_live_chain_When_rendered_as_html_Then_the_base_is_on_the_left_and_node_names_show()
    {
        var html = Live().ToHtml();

        Assert.Contains("&larr;", html);
        Assert.True(html.IndexOf("#block122", StringComparison.Ordinal) < html.IndexOf("disk0-snap2", StringComparison.Ordinal));
        Assert.Contains("active", html);
    }

    [Fact]
    public void Given_journal_entries_When_rendered_as_html_Then_commands_are_escaped_and_failures_tinted()
    {
        var journal = new LabJournal();
        journal.Begin("qmp", """{"execute":"block-commit","arguments":{"device":"disk0"}}""").Complete("{}");
        journal.Begin("qmp", """{"execute":"blockdev-del","arguments":{"node-name":"x<y"}}""").Fail("GenericError: Failed to find node");

        var html = journal.Entries.ToHtml();

        Assert.Contains("x&lt;y", html);
        Assert.Contains("background:#fde8e8", html);
        Assert.Contains("lab-journal", html);
    }

    [Fact]
    public void Given_a_wait_of_many_polls_When_the_journal_is_rendered_Then_they_are_one_row_waiting_not_red_and_every_raw_entry_is_kept_below()
    {
        var journal = new LabJournal();
        var t0 = new DateTimeOffset(2026, 12, 4, 8, 0, 0, TimeSpan.Zero);
        var entries = new List<JournalEntry> { new(1, "qmp", """{"execute":"query-block"}""", t0, TimeSpan.FromMilliseconds(1), true, "[]") };
        for (var i = 0; i < 27; i++)
        {
            entries.Add(new JournalEntry(2 + i, "agent", """{"execute":"guest-file-open","arguments":{"path":"/tmp/w.progress"}}""", t0.AddMilliseconds(100 * i), TimeSpan.FromMilliseconds(1), false,
                "GenericError: failed to open file '/tmp/w.progress'") { WaitId = 5, Wait = "the writer to reach 10 lines", NotYet = true });
        }

        var html = entries.ToHtml();

        var folded = System.Net.WebUtility.HtmlDecode(html[..html.IndexOf("<details", StringComparison.Ordinal)]);
        Assert.Equal(2, folded.Split("<tr").Length - 2); // header row + 2 rows
        Assert.Contains("<td>2–28</td>", folded);
        Assert.Contains("<td style=\"text-align:right\">27</td>", folded);
        Assert.Contains("27 × not yet (waiting)", folded);
        Assert.Contains("class=\"waiting\"", folded);
        Assert.DoesNotContain("fde8e8", folded);
        Assert.Contains("polled while waiting for the writer to reach 10 lines", folded);
        var raw = html[html.IndexOf("<details", StringComparison.Ordinal)..];
        Assert.Contains("every entry (28, unfolded)", raw);
        Assert.Equal(28, raw.Split("<tr").Length - 2);
        Assert.Equal(27, raw.Split("class=\"waiting\"").Length - 1);
    }

    [Fact]
    public void Given_findings_When_made_a_table_Then_there_is_one_row_per_finding_with_its_verdict()
    {
        var findings = new Findings();
        findings.Check("the prefix is consistent", false, "gap at 17");
        findings.Note("snapshot took", "9 ms");

        var table = findings.ToTable();

        Assert.Equal("Findings", table.Title);
        Assert.Equal(["Claim", "Observed", "Verdict"], table.Columns);
        Assert.Equal(["refuted", "info"], table.Rows.Select(r => (string)r[2]!));
    }
}
