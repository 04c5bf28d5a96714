using LabRunner.Notebooks;

namespace LabKernel.Tests.Runner;

public sealed class KernelJitTests
{
    [Fact]
    public void With_nothing_set_the_kernel_gets_both_settings()
    {
        Assert.Equal([("DOTNET_TieredPGO", "0"), ("DOTNET_TC_CallCountThreshold", "1000")], KernelJit.Settings(_ => null));
    }

    [Theory]
    [InlineData("default")]
    [InlineData(" DEFAULT ")]
    public void LAB_KERNEL_JIT_default_leaves_the_runtimes_defaults(string value)
    {
        Assert.Empty(KernelJit.Settings(name => name == KernelJit.Variable ? value : null));
    }

    [Fact]
    public void A_setting_already_in_the_environment_is_kept()
    {
        Assert.Equal([("DOTNET_TC_CallCountThreshold", "1000")], KernelJit.Settings(name => name == "DOTNET_TieredPGO" ? "1" : null));
    }
}
