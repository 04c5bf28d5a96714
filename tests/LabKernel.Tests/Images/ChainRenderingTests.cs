using LabKernel.Images;

namespace LabKernel.Tests.Images;

public sealed class ChainRenderingTests
{
    private static BackingChain Chain() => BackingChain.Parse(Samples.Read("info-chain.json"));

    [Fact]
    public void Given_a_three_layer_chain_When_rendered_as_text_Then_base_comes_first_and_the_active_layer_is_marked()
    {
        Assert.Equal("base.qcow2 <- overlay1.qcow2 <- overlay2.qcow2 (active)", Chain().ToText());
    }

    [Fact]
    public void Given_a_three_layer_chain_When_rendered_with_full_paths_Then_every_layer_shows_its_resolved_path()
    {
        Assert.Equal(
            "/tmp/lab-samples/base.qcow2 <- /tmp/lab-samples/overlay1.qcow2 <- /tmp/lab-samples/overlay2.qcow2 (active)",
            Chain().ToText(ChainPathStyle.FullPath));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(65536, "64 KiB")]
    [InlineData(1536, "1.5 KiB")]
    [InlineData(4194304, "4 MiB")]
    [InlineData(1073741824, "1 GiB")]
    public void Given_a_byte_count_When_formatted_Then_binary_units_are_used(long bytes, string expected)
    {
        Assert.Equal(expected, SizeText.Format(bytes));
    }
}

public sealed class ChainAgreementTests
{
    private static BackingChain Chain() => BackingChain.Parse(Samples.Read("info-chain.json"));

    [Fact]
    public void Given_the_same_files_from_qemu_When_compared_Then_the_chains_agree()
    {
        var agreement = Chain().Compare(["/tmp/lab-samples/overlay2.qcow2", "/tmp/lab-samples/overlay1.qcow2", "/tmp/lab-samples/base.qcow2"]);

        Assert.True(agreement.Agrees);
        Assert.Null(agreement.FirstDifferenceDepth);
        Assert.Contains("agree", agreement.Summary);
    }

    [Fact]
    public void Given_qemu_names_the_active_layer_relatively_When_compared_Then_a_matching_tail_agrees()
    {
        var agreement = Chain().Compare(["overlay2.qcow2", "/tmp/lab-samples/./overlay1.qcow2", "/tmp/lab-samples/base.qcow2"]);

        Assert.True(agreement.Agrees, agreement.Summary);
    }

    [Fact]
    public void Given_qemu_still_has_a_committed_layer_When_compared_Then_the_first_difference_is_at_that_depth()
    {
        var live = new[] { "/tmp/lab-samples/overlay2.qcow2", "/tmp/lab-samples/overlay1-old.qcow2", "/tmp/lab-samples/base.qcow2" };

        var agreement = Chain().Compare(live);

        Assert.False(agreement.Agrees);
        Assert.Equal(1, agreement.FirstDifferenceDepth);
        Assert.Equal("/tmp/lab-samples/overlay1.qcow2", agreement.Expected);
        Assert.Equal("/tmp/lab-samples/overlay1-old.qcow2", agreement.Actual);
        Assert.Contains("depth 1", agreement.Summary);
    }

    [Fact]
    public void Given_qemu_sees_a_shorter_chain_When_compared_Then_the_missing_depth_is_reported()
    {
        var agreement = Chain().Compare(["/tmp/lab-samples/overlay2.qcow2", "/tmp/lab-samples/overlay1.qcow2"]);

        Assert.False(agreement.Agrees);
        Assert.Equal(2, agreement.FirstDifferenceDepth);
        Assert.Equal("/tmp/lab-samples/base.qcow2", agreement.Expected);
        Assert.Null(agreement.Actual);
        Assert.Contains("3 layer(s)", agreement.Summary);
    }

    [Fact]
    public void Given_two_different_files_with_the_same_name_in_different_folders_When_compared_Then_they_differ()
    {
        var agreement = Chain().Compare(["/other/overlay2.qcow2", "/tmp/lab-samples/overlay1.qcow2", "/tmp/lab-samples/base.qcow2"]);

        Assert.False(agreement.Agrees);
        Assert.Equal(0, agreement.FirstDifferenceDepth);
    }

    [Fact]
    public void Given_the_info_of_a_layer_that_still_has_a_backing_file_When_asked_if_it_stands_alone_Then_it_does_not()
    {
        var chain = BackingChain.Parse(Samples.Read("info-chain.json"));

        // 05's "After block-stream snap3 has no backing file": a stream that did not complete leaves the backing file named.
        Assert.True(chain.Active.HasBacking);
        Assert.False(chain.Base.HasBacking);
    }
}
