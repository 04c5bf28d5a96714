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
    public void A_start_says_how_and_why_in_one_line()
    {
        Assert.Equal("warm start: restored", new GuestStart(true, "restored").ToString());
        Assert.Equal("cold boot: LAB_WARM=0", new GuestStart(false, "LAB_WARM=0").ToString());
    }
}
