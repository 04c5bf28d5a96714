using LabKernel.Block;

namespace LabKernel.Tests.Block;

/// <summary>QEMU's json: pseudo-filenames (a layer whose header names its backing file otherwise) name the layer's file.</summary>
public sealed class BlockFilenamesTests
{
    [Theory]
    [InlineData("/images/disk.qcow2", "/images/disk.qcow2")]
    // A qcow2 layer over a chain opened by absolute path whose header said "base.qcow2": QEMU's own text (7.2).
    [InlineData("""json:{"backing": {"driver": "qcow2", "file": {"driver": "file", "filename": "/u/base.qcow2"}}, "driver": "qcow2", "file": {"driver": "file", "filename": "/u/root.qcow2"}}""", "/u/root.qcow2")]
    // Not a plain file underneath, or not JSON: left as it is.
    [InlineData("""json:{"driver": "qcow2", "file": {"driver": "nbd", "server": {"type": "unix", "path": "/s"}}}""", """json:{"driver": "qcow2", "file": {"driver": "nbd", "server": {"type": "unix", "path": "/s"}}}""")]
    [InlineData("json:{not json", "json:{not json")]
    [InlineData("nbd+unix:///lab?socket=/s", "nbd+unix:///lab?socket=/s")]
    public void Given_a_node_filename_When_made_plain_Then_a_json_description_of_a_file_gives_its_path_and_anything_else_stays(string name, string plain)
    {
        Assert.Equal(plain, BlockFilenames.Plain(name));
    }
}
