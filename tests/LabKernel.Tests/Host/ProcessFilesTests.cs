using LabKernel.Host;

namespace LabKernel.Tests.Host;

public sealed class ProcessFilesTests
{
    [Fact]
    public void Given_this_process_holds_a_file_open_When_listing_its_open_files_Then_the_file_is_among_them_and_the_suffix_filters()
    {
        var path = Path.Combine(Path.GetTempPath(), $"open-{Guid.NewGuid():N}.qcow2");
        try
        {
            using (File.Create(path))
            {
                var pid = Environment.ProcessId;

                Assert.Contains(path, ProcessFiles.OpenBy(pid, ".qcow2"));
                Assert.DoesNotContain(ProcessFiles.OpenBy(pid, ".qcow2"), f => !f.EndsWith(".qcow2", StringComparison.Ordinal));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Given_a_process_that_does_not_exist_When_listing_Then_nothing_comes_back() =>
        Assert.Empty(ProcessFiles.OpenBy(int.MaxValue));
}
