using LabKernel.Host;

namespace LabKernel.Tests.Host;

public sealed class LabWarningsTests
{
    [Fact]
    public void Given_a_listener_When_the_lab_warns_Then_the_listener_gets_the_line_and_a_failing_listener_does_not_stop_the_others()
    {
        var seen = new List<string>();
        Action<string> broken = _ => throw new IOException("stderr closed");
        Action<string> listener = m => { lock (seen) { seen.Add(m); } };
        LabWarnings.Raised += broken;
        LabWarnings.Raised += listener;
        try
        {
            LabWarnings.Raise("clean-up of test at exit failed: x");
        }
        finally
        {
            LabWarnings.Raised -= broken;
            LabWarnings.Raised -= listener;
        }

        Assert.Contains("clean-up of test at exit failed: x", seen);
    }
}
