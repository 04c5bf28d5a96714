using System.Text.Json.Nodes;
using LabKernel.Guests;

namespace LabKernel.Tests.Guests;

public sealed class WarmStatesTests
{
    [Theory]
    [InlineData("0", true)]
    [InlineData(" off ", true)]
    [InlineData("FALSE", true)]
    [InlineData("no", true)]
    [InlineData("1", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void LAB_WARM_turns_warm_starts_off_only_when_it_says_so(string? value, bool off) => Assert.Equal(off, WarmStates.IsOff(value));

    [Fact]
    public void Any_difference_in_what_must_match_gives_another_key()
    {
        var a = new JsonObject { ["qemu"] = "QEMU emulator version 7.2.22", ["memory_mib"] = 1024, ["drives"] = new JsonArray("disk0:qcow2:rw") };
        var same = (JsonObject)a.DeepClone();
        var memory = (JsonObject)a.DeepClone();
        memory["memory_mib"] = 2048;
        var qemu = (JsonObject)a.DeepClone();
        qemu["qemu"] = "QEMU emulator version 8.2.0";
        Assert.Equal(WarmStates.KeyOf(a), WarmStates.KeyOf(same));
        Assert.NotEqual(WarmStates.KeyOf(a), WarmStates.KeyOf(memory));
        Assert.NotEqual(WarmStates.KeyOf(a), WarmStates.KeyOf(qemu));
        Assert.Equal(16, WarmStates.KeyOf(a).Length);
    }

    [Fact]
    public void The_key_names_the_CPU_model_and_under_KVM_the_hosts_CPU()
    {
        const string Epyc = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2\n";
        const string EpycReordered = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: avx2 fpu sse2\n";
        const string EpycWithoutAvx2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2\n";
        var tcg = new Machines.AcceleratorChoice("tcg", "no /dev/kvm");
        var kvm = new Machines.AcceleratorChoice("kvm", "probe booted");

        // Under TCG the model is QEMU's own (-cpu max, whose features come with QEMU's version): the host's CPU does not count.
        Assert.Equal("-accel tcg,thread=multi -cpu max", WarmStates.CpuOf(tcg, Epyc));
        Assert.Equal(WarmStates.CpuOf(tcg, Epyc), WarmStates.CpuOf(tcg, EpycWithoutAvx2));
        // Under KVM the guest saw the host's CPU: another model or another set of flags is another key; the order of the flags is not.
        Assert.StartsWith("-accel kvm -cpu host; host AMD EPYC, flags ", WarmStates.CpuOf(kvm, Epyc), StringComparison.Ordinal);
        Assert.Equal(WarmStates.CpuOf(kvm, Epyc), WarmStates.CpuOf(kvm, EpycReordered));
        Assert.NotEqual(WarmStates.CpuOf(kvm, Epyc), WarmStates.CpuOf(kvm, EpycWithoutAvx2));
        Assert.NotEqual(WarmStates.CpuOf(kvm, Epyc), WarmStates.CpuOf(kvm, Epyc.Replace("AMD EPYC", "Intel Xeon", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_start_says_how_and_why_in_one_line()
    {
        Assert.Equal("warm start: restored", new GuestStart(true, "restored").ToString());
        Assert.Equal("cold boot: LAB_WARM=0", new GuestStart(false, "LAB_WARM=0").ToString());
    }
}
