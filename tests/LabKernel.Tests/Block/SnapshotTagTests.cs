using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Snapshots;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// An internal snapshot's tag reaches HMP as part of a command line (<c>savevm TAG</c>), where a space starts another
/// argument. A tag that is not one plain word is refused with a one-line usage error before anything is sent.
/// </summary>
public sealed class SnapshotTagTests
{
    // Passed to the theory by index: control characters in a test's display name upset the test host's reporting.
    private static readonly string[] Bad =
    [
        "", " ", "two words", "tab\there", "new\nline", "cr\rx", "nul\0x", "bell\ax", "esc\u001b[31m", "quote'd", "double\"d", "back`tick`",
        "semi;colon", "$(reboot)", "a/b", "ü", new string('a', 129), "x\u0085y", "x\u00a0y",
    ];

    public static TheoryData<int> BadTags() => [.. Enumerable.Range(0, Bad.Length)];

    private static Task<ScriptedQmpPeer> PeerAsync(bool labMadeTop = true)
    {
        // The fake's active image stands for an overlay the lab made, as in every experiment.
        if (labMadeTop)
        {
            LabKernel.Host.LabFiles.MarkCreated("/i/top.qcow2");
        }
        return OneDiskQemu.StartAsync((cmd, _) => cmd == "human-monitor-command" ? JsonValue.Create("") : null);
    }

    [Theory]
    [MemberData(nameof(BadTags))]
    public async Task Given_a_tag_that_is_not_one_plain_word_When_saved_loaded_or_deleted_on_either_path_Then_a_one_line_usage_error_comes_before_anything_is_sent(int index)
    {
        var tag = Bad[index];
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        var before = peer.Received.Count;

        foreach (var path in new[] { InternalSnapshotPath.Job, InternalSnapshotPath.HumanMonitor })
        {
            var calls = new Func<Task>[]
            {
                () => block.SaveInternalSnapshotAsync(tag, ["disk0"], path: path),
                () => block.LoadInternalSnapshotAsync(tag, ["disk0"], path: path),
                () => block.DeleteInternalSnapshotAsync(tag, ["disk0"], path),
            };
            foreach (var call in calls)
            {
                var e = await Assert.ThrowsAsync<LabUsageException>(call);
                Assert.StartsWith("snapshot tag ", e.Message, StringComparison.Ordinal);
                Assert.EndsWith(" is not allowed: use 1 to 128 letters, digits and . _ - + : only", e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(e.Message, c => char.IsControl(c));
                if (tag.Any(char.IsControl))
                {
                    Assert.Contains("\\u00", e.Message, StringComparison.Ordinal); // shown escaped
                }
                if (tag.Length > 40)
                {
                    Assert.Contains($"…' ({tag.Length} characters)", e.Message, StringComparison.Ordinal); // cut
                }
            }
        }

        Assert.Equal(before, peer.Received.Count);
    }

    [Theory]
    [InlineData("before-overlays")]
    [InlineData("run.2026-12-01T18:00+1")]
    public async Task Given_a_plain_tag_When_saved_through_HMP_Then_savevm_gets_exactly_that_word(string tag)
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);

        await block.SaveInternalSnapshotAsync(tag, ["disk0"], path: InternalSnapshotPath.HumanMonitor);

        var sent = peer.Received.Single(r => r.Command == "human-monitor-command").Arguments["command-line"]!.GetValue<string>();
        Assert.Equal($"savevm {tag}", sent);
    }

    [Fact]
    public async Task Given_an_active_image_the_lab_did_not_make_When_an_internal_snapshot_is_saved_Then_the_guard_refuses_it_before_any_job_or_HMP_command_is_sent()
    {
        LabKernel.Host.LabFiles.Forget("/i/top.qcow2");
        await using var peer = await OneDiskQemu.StartAsync((cmd, _) => cmd == "human-monitor-command" ? JsonValue.Create("") : null);
        var block = new BlockLayer(peer.Client);

        foreach (var path in new[] { InternalSnapshotPath.Job, InternalSnapshotPath.HumanMonitor })
        {
            var e = await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() => block.SaveInternalSnapshotAsync("s1", ["disk0"], path: path));
            Assert.Equal("/i/top.qcow2", e.Path);
        }

        Assert.DoesNotContain(peer.Received, r => r.Command is "snapshot-save" or "human-monitor-command");
    }
}
