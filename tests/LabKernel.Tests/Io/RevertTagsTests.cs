using LabKernel.Io;

namespace LabKernel.Tests.Io;

/// <summary>Notebook 04's "after reverting to snapshot k the newest tag file is TAG_aio_vdb_k", refuted by a revert that stayed on another layer.</summary>
public sealed class RevertTagsTests
{
    [Fact]
    public void Given_the_newest_tag_after_each_revert_When_one_shows_another_layers_tag_Then_that_revert_is_named()
    {
        var right = new Dictionary<int, string> { [3] = "TAG_aio_vdb_3", [2] = "TAG_aio_vdb_2", [1] = "TAG_aio_vdb_1", [0] = "" };
        Assert.Empty(RevertTags.Wrong(right));

        // The revert to 2 stayed on the newest layer; the base shows the first churn's tag.
        var wrong = new Dictionary<int, string>(right) { [2] = "TAG_aio_vdb_3", [0] = "TAG_aio_vdb_1" };
        Assert.Equal([0, 2], RevertTags.Wrong(wrong).Select(t => t.Key));

        // TAG_aio_vdb_10 is not TAG_aio_vdb_1 (the sort is numeric in the guest; the comparison exact here).
        Assert.Single(RevertTags.Wrong(new Dictionary<int, string> { [1] = "TAG_aio_vdb_10" }));
    }
}
