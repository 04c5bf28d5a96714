using LabRunner.Reporting;

namespace LabKernel.Tests.Runner;

public sealed class MarkdownTests
{
    [Theory]
    [InlineData("# Title", "<h1>Title</h1>\n")]
    [InlineData("### Third ###", "<h3>Third</h3>\n")]
    [InlineData("one\ntwo\n\nthree", "<p>one\ntwo</p>\n<p>three</p>\n")]
    [InlineData("**bold** and *it* and _it2_ and `a*b*c`", "<p><strong>bold</strong> and <em>it</em> and <em>it2</em> and <code>a*b*c</code></p>\n")]
    [InlineData("[lab](https://example.com/a?b=1&c=2)", "<p><a href=\"https://example.com/a?b=1&amp;c=2\">lab</a></p>\n")]
    [InlineData("[x](javascript:alert(1))", "<p><a href=\"#\">x</a>)</p>\n")]
    [InlineData("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n")]
    [InlineData("```csharp\nvar x = 1 < 2;\n```", "<pre><code class=\"language-csharp\">var x = 1 &lt; 2;</code></pre>\n")]
    [InlineData("---", "<hr>\n")]
    [InlineData("> quoted *text*", "<blockquote>\n<p>quoted <em>text</em></p>\n</blockquote>\n")]
    [InlineData("snake_case_name stays", "<p>snake_case_name stays</p>\n")]
    public void Renders_blocks_and_inlines(string markdown, string html)
    {
        Assert.Equal(html, Markdown.ToHtml(markdown));
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

        Assert.Equal(
            "<table>\n<thead><tr><th style=\"text-align:left\">name</th><th style=\"text-align:right\">ms</th></tr></thead>\n<tbody>\n"
            + "<tr><td style=\"text-align:left\">a | b</td><td style=\"text-align:right\">1.5</td></tr>\n"
            + "<tr><td style=\"text-align:left\">c</td><td style=\"text-align:right\">2</td></tr>\n</tbody>\n</table>\n",
            html);
    }
}
