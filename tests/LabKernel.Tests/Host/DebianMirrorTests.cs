using LabKernel.Host;

namespace LabKernel.Tests.Host;

public sealed class DebianMirrorTests
{
    [Fact]
    public void Given_deb822_sources_with_security_first_When_finding_the_mirror_Then_the_main_archive_is_chosen()
    {
        var dir = Directory.CreateTempSubdirectory("apt").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "sources.list.d"));
        File.WriteAllText(Path.Combine(dir, "sources.list.d", "a.sources"), """
            Types: deb
            URIs: http://mirror.example/debian-security
            Suites: bookworm-security
            Components: main
            """.Replace("            ", ""));
        File.WriteAllText(Path.Combine(dir, "sources.list.d", "debian.sources"), """
            Types: deb
            # a comment
            URIs: http://mirror.example/debian/
            Suites: bookworm bookworm-updates
            Components: main contrib

            Types: deb
            URIs: http://mirror.example/debian-security
            Suites: bookworm-security
            Components: main
            """.Replace("            ", ""));
        Assert.Equal("http://mirror.example/debian", DebianMirror.Find(dir));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Given_one_line_sources_with_options_When_finding_the_mirror_Then_the_uri_is_read()
    {
        var dir = Directory.CreateTempSubdirectory("apt").FullName;
        File.WriteAllText(Path.Combine(dir, "sources.list"),
            "# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://local.example/debian bookworm main\n");
        Assert.Equal("http://local.example/debian", DebianMirror.Find(dir));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Given_no_sources_When_finding_the_mirror_Then_the_error_says_how_to_set_one()
    {
        var dir = Directory.CreateTempSubdirectory("apt").FullName;
        var ex = Assert.Throws<LabException>(() => DebianMirror.Find(dir));
        Assert.Contains("LAB_DEBIAN_MIRROR", ex.Message);
        Directory.Delete(dir, true);
    }
}
