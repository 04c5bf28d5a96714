using LabKernel;
using LabKernel.Experiments;
using LabKernel.Journal;

namespace LabNotebooks.Tests;

/// <summary>The parts of the notebook facade that need no guest: parameter checks, what it shows, its figures.</summary>
public sealed class FacadeTests
{
    [Theory]
    [InlineData("none", "none")]
    [InlineData(" Sync ", "sync")]
    [InlineData("FSFREEZE", "fsfreeze")]
    public void Quiesce_modes_are_checked_and_normalised(string given, string expected) =>
        Assert.Equal(expected, Experiment.CheckQuiesce(given));

    [Theory]
    [InlineData("none", QuiesceMode.None)]
    [InlineData(" Sync ", QuiesceMode.Sync)]
    [InlineData("FSFREEZE", QuiesceMode.FsFreeze)]
    public void Quiesce_modes_parse_to_their_typed_value(string given, QuiesceMode expected) =>
        Assert.Equal(expected, Experiment.ParseQuiesce(given));

    [Theory]
    [InlineData("freeze")]
    [InlineData("")]
    [InlineData(null)]
    public void A_wrong_quiesce_mode_is_a_one_line_usage_error_naming_the_choices(string? given)
    {
        var e = Assert.Throws<LabUsageException>(() => Experiment.CheckQuiesce(given));
        Assert.Contains("none, sync or fsfreeze", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task A_wrong_backend_is_refused_before_any_file_is_made()
    {
        var output = Directory.CreateTempSubdirectory("facade-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => Lab.StartAsync("04-x", new LabSetup { Backend = "vmware", OutputDir = output }));
            Assert.Contains("qemu or libvirt", e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(output));
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }

    public static TheoryData<LabSetup, string> BadSetups() => new()
    {
        { new LabSetup { MemoryMiB = 0 }, "LabSetup.MemoryMiB must be from 128 to 1048576, not 0" },
        { new LabSetup { MemoryMiB = 5_000_000 }, "LabSetup.MemoryMiB must be from 128 to 1048576, not 5000000" },
        { new LabSetup { Overlays = [] }, "LabSetup.Overlays: the starting chain needs at least one overlay" },
        { new LabSetup { Overlays = ["overlay1", "overlay1"] }, "LabSetup: the overlays' and data disks' roles must differ (overlay1, overlay1)" },
        { new LabSetup { Overlays = ["../escape"] }, "LabSetup: '../escape' is not a role a file can be named after" },
        { new LabSetup { DataDisks = [new DataDisk("overlay1", 64)] }, "LabSetup: the overlays' and data disks' roles must differ (overlay1, overlay1)" },
        { new LabSetup { DataDisks = [new DataDisk("data", 0)] }, "LabSetup.DataDisks: data must be at least 1 MiB, not 0" },
    };

    [Theory]
    [MemberData(nameof(BadSetups))]
    public async Task A_setup_value_out_of_range_is_one_line_naming_the_option_before_any_file_is_made(LabSetup setup, string expected)
    {
        var output = Directory.CreateTempSubdirectory("facade-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<LabUsageException>(() => Lab.StartAsync("04-x", setup with { OutputDir = output }));
            Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(output));
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }

    [Fact]
    public void Text_shown_as_HTML_is_encoded_by_the_lab()
    {
        var view = HtmlView.Paragraph("a <b> & \"c\"");
        Assert.Equal("<p>a &lt;b&gt; &amp; &quot;c&quot;</p>", view.Html);
        Assert.Equal("a <b> & \"c\"", view.ToString());
        var bundle = NotebookFormatters.TryFormat(view) ?? LabFormatterBundle(view);
        Assert.Equal(view.Html, bundle[MimeTypes.Html]);
    }

    [Fact]
    public void The_end_of_an_experiment_shows_the_cleanup_the_hand_back_finding_and_the_journal_and_reports_the_finding()
    {
        var journal = new LabJournal();
        journal.Begin("block", "snapshot <disk0>").Complete("ok");
        var findings = new Findings();
        findings.Check("Your domain's image (vda) was not written between take-over and hand-back", true, "sha256 same");
        var end = new ExperimentEnd("removed 3 files the lab created", "handed back on root.qcow2", findings, journal.Entries.ToList());

        var bundle = NotebookFormatters.TryFormat(end)!;
        Assert.Contains("removed 3 files the lab created.", bundle[MimeTypes.Html]);
        Assert.Contains("snapshot &lt;disk0&gt;", bundle[MimeTypes.Html]);
        Assert.Contains("Your domain", bundle[MimeTypes.Findings]);
        Assert.Contains("confirmed", bundle[MimeTypes.Findings]);
        Assert.Contains("1 journal entries", bundle[MimeTypes.PlainText]);
    }

    [Fact]
    public void A_line_figure_has_one_named_trace_per_series_and_both_axis_titles()
    {
        var chart = Figures.Lines("IOPS against depth", "layers", "IOPS",
            [new Series("read", [1, 2, 3], [10, 9, 8]), new Series("write", [1, 2, 3], [5, 5, 4])]);
        var json = ChartJson.ToPlotlyJson(chart).ToJsonString();
        Assert.Contains("\"read\"", json);
        Assert.Contains("\"write\"", json);
        Assert.Contains("IOPS against depth", json);
        Assert.Contains("layers", json);
    }

    [Fact]
    public void Column_values_must_match_the_categories()
    {
        var e = Assert.Throws<ArgumentException>(() => Figures.Columns("t", "MiB", ["a", "b"], [("s", new double[] { 1 })]));
        Assert.Contains("1 values for 2 categories", e.Message);
    }

    [Fact]
    public void A_monitor_reply_is_shown_preformatted_under_its_title_and_encoded()
    {
        var view = HtmlView.Preformatted("HMP info block-jobs", "Type mirror, device <drive>: Completed 0 of 8 bytes");

        Assert.Equal("<p><b>HMP info block-jobs</b></p><pre>Type mirror, device &lt;drive&gt;: Completed 0 of 8 bytes</pre>", view.Html);
        Assert.Equal("HMP info block-jobs\nType mirror, device <drive>: Completed 0 of 8 bytes", view.Text);
    }

    private static IReadOnlyDictionary<string, string> LabFormatterBundle(object value)
    {
        var source = new LabFormatterSource();
        var bundle = new Dictionary<string, string>();
        foreach (ConventionFormatter f in source.CreateTypeFormatters())
        {
            using var w = new StringWriter();
            if (f.Format(value, w))
            {
                bundle[f.MimeType] = w.ToString();
            }
        }
        return bundle;
    }
}
