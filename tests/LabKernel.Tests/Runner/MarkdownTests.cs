using LabRunner.Reporting;

namespace LabKernel.Tests.Runner;

/// <summary>The report's markdown (Markdig): what notebooks use renders, and nothing in it can run a script.</summary>
public sealed class MarkdownTests
{
    [Theory]
    [InlineData("# Title", "<h1 id=\"title\">Title</h1>")]
    [InlineData("### Third ###", "<h3 id=\"third\">Third</h3>")]
    [InlineData("#### lab run failed here", "<h4 id=\"lab-run-failed-here\">lab run failed here</h4>")]
    [InlineData("one\ntwo\n\nthree", "<p>three</p>")]
    [InlineData("**bold** and *it* and _it2_ and `a*b*c`", "<p><strong>bold</strong> and <em>it</em> and <em>it2</em> and <code>a*b*c</code></p>")]
    [InlineData("[lab](https://example.com/a?b=1&c=2)", "<a href=\"https://example.com/a?b=1&amp;c=2\">lab</a>")]
    [InlineData("```csharp\nvar x = 1 < 2;\n```", "var x = 1 &lt; 2;")]
    [InlineData("```csharp\nvar x = 1;\n```", "<code class=\"language-csharp\">")]
    [InlineData("> quoted *text*", "<blockquote>\n<p>quoted <em>text</em></p>\n</blockquote>")]
    [InlineData("snake_case_name stays", "<p>snake_case_name stays</p>")]
    public void Renders_blocks_and_inlines(string markdown, string html)
    {
        Assert.Contains(html, Markdown.ToHtml(markdown));
    }

    [Theory]
    [InlineData("<script>alert(1)</script>", "<script")]
    [InlineData("text <img src=x onerror=alert(1)> more", "<img")]
    [InlineData("[x](javascript:alert(1))", "href=\"javascript")]
    [InlineData("![x](JavaScript:alert(1))", "src=\"JavaScript")]
    [InlineData("<javascript:alert(1)>", "href=\"javascript")]
    public void Raw_HTML_and_script_links_are_never_passed_through(string markdown, string forbidden)
    {
        var html = Markdown.ToHtml(markdown);

        Assert.DoesNotContain(forbidden, html, StringComparison.Ordinal);
    }

    [Fact]
    public void Renders_nested_and_numbered_lists()
    {
        var html = Markdown.ToHtml("- a\n- b\n  1. one\n  2. two\n- c");

        Assert.Equal("<ul>\n<li>a</li>\n<li>b\n<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n</li>\n<li>c</li>\n</ul>\n", html);
    }

    [Fact]
    public void Renders_pipe_tables_with_alignment()
    {
        var html = Markdown.ToHtml("| name | ms |\n|:-----|---:|\n| a \\| b | 1.5 |\n| c | 2 |");

        Assert.Matches("<th style=\"text-align: ?left;?\">name</th>", html);
        Assert.Matches("<td style=\"text-align: ?right;?\">1.5</td>", html);
        Assert.Contains("a | b", html);
    }
}
