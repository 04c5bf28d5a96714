using LabKernel.Images;
using LabKernel.Processes;

namespace LabKernel.Tests.Images;

public sealed class QemuImgErrorTests
{
    // stderr as qemu-img 7.2 prints it while qemu-nbd/QEMU holds the image.
    private const string LockedStderr = "qemu-img: Could not open 'a.qcow2': Failed to get shared \"write\" lock\nIs another process using the image [a.qcow2]?\n";

    [Fact]
    public void Given_stderr_of_a_locked_image_When_a_writer_fails_Then_it_becomes_image_in_use_with_command_line()
    {
        var result = new ProcessResult("qemu-img", ["commit", "a.qcow2"], 1, "", LockedStderr, TimeSpan.Zero);

        var e = QemuImg.Failure("commit", result, "/images/a.qcow2");

        var inUse = Assert.IsType<ImageInUseException>(e);
        Assert.StartsWith("image /images/a.qcow2 is in use by a running QEMU", inUse.Message);
        Assert.Contains("`qemu-img commit a.qcow2`", inUse.Message);
        Assert.Equal("commit", inUse.Subcommand);
        Assert.IsType<ProcessFailedException>(inUse.InnerException);
    }

    [Fact]
    public void Given_any_other_failure_When_wrapped_Then_the_message_names_subcommand_exit_code_and_stderr()
    {
        var result = new ProcessResult("qemu-img", ["info", "x"], 1, "", "qemu-img: Could not open 'x': No such file or directory\n", TimeSpan.Zero);

        var e = QemuImg.Failure("info", result, "x");

        Assert.IsNotType<ImageInUseException>(e);
        Assert.Equal("qemu-img info failed (exited with 1): `qemu-img info x`: qemu-img: Could not open 'x': No such file or directory", e.Message);
        Assert.Equal(1, e.ExitCode);
    }

    [Theory]
    [InlineData(LockedStderr, true)]
    [InlineData("qemu-img: Could not open 'b': Failed to get \"write\" lock\n", true)]
    [InlineData("qemu-img: Could not open 'b': Permission denied\n", false)]
    public void Given_stderr_When_classified_Then_only_lock_failures_count(string stderr, bool expected)
    {
        Assert.Equal(expected, ImageInUseException.IsLockFailure(stderr));
    }
}
