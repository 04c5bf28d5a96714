using LabKernel.Experiments;
using LabKernel.Journal;

namespace LabNotebooks.Tests;

/// <summary>
/// Text that comes from the guest (a command's output such as <c>df</c>, an agent or monitor reply, an error) is
/// shown in notebooks and reports; whatever path it takes to HTML, markup in it comes out encoded, never as markup.
/// </summary>
public sealed class GuestTextHtmlTests
{
    // What a hostile or just unlucky guest could print: a mount point named with markup, quotes and an ampersand.
    private const string GuestText = "Filesystem 1M-blocks Used\n/dev/vda 990 420 /mnt/<script>alert('x')</script> & \"<img src=x onerror=alert(1)>\"";

    private static void AssertEncoded(string html)
    {
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", html, StringComparison.Ordinal);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_df_output_in_a_paragraph_or_a_preformatted_block_When_rendered_Then_its_markup_is_encoded()
    {
        AssertEncoded(HtmlView.Paragraph($"Guest root filesystem (df -m): {GuestText}").Html);
        AssertEncoded(HtmlView.Preformatted("HMP info block-jobs", GuestText).Html);
        AssertEncoded(HtmlView.Titled(GuestText, "<div></div>", "").Html);
    }

    [Fact]
    public void Given_guest_text_observed_in_a_finding_When_the_findings_formatter_renders_it_Then_its_markup_is_encoded()
    {
        var findings = new Findings();
        findings.Check(GuestText, false, GuestText);
        findings.Note("df", GuestText);

        var bundle = NotebookFormatters.Formats.Where(f => f.Type == typeof(Findings) && f.MimeType == MimeTypes.Html).Single().Write(findings);

        AssertEncoded(bundle);
        AssertEncoded(findings.ToTable(GuestText).ToHtml());
    }

    [Fact]
    public void Given_a_guest_reply_in_the_journal_and_the_experiment_end_When_rendered_Then_its_markup_is_encoded()
    {
        var entries = new[] { new JournalEntry(1, "agent<b>", "{\"execute\":\"guest-exec\"} " + GuestText, DateTimeOffset.UnixEpoch, TimeSpan.FromMilliseconds(3), false, GuestText) };
        AssertEncoded(entries.ToHtml());

        var findings = new Findings();
        findings.Check("your domain's image was not written", true, GuestText);
        var end = new ExperimentEnd(GuestText, GuestText, findings, entries);
        AssertEncoded(end.ToHtml());
        AssertEncoded(NotebookFormatters.Formats.Single(f => f.Type == typeof(ExperimentEnd) && f.MimeType == MimeTypes.Html).Write(end));
    }

    [Fact]
    public void Given_guest_text_in_a_table_cell_caption_or_column_When_rendered_Then_its_markup_is_encoded()
    {
        var table = new[] { new { Mount = GuestText, Size = 1 } }.ToTable(GuestText);
        AssertEncoded(table.ToHtml());
    }
}
