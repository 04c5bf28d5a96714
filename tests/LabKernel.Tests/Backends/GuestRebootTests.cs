using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Backends;
using LabKernel.GuestAgent;

namespace LabKernel.Tests.Backends;

/// <summary>
/// The wait for a guest to come back from a reboot reads the kernel's boot_id through the agent. A command the old
/// boot took in just as it went down is never answered; each such command must cost the probe's short limit, not the
/// agent's 30 s (notebook 03's reboot once came "back in 70.8 s": the read's open and its close were both lost).
/// </summary>
public sealed class GuestRebootTests
{
    /// <summary>
    /// An agent that answers boot_id reads with <c>old</c> until the reboot is asked, then swallows the given commands
    /// (they wait out the caller's limit, then time out as the agent client does), then answers with <c>new</c>.
    /// </summary>
    private sealed class RebootingAgent(params string[] lost) : IGuestAgent
    {
        private readonly Queue<string> _lost = new(lost);
        public bool Rebooted { get; set; }
        public List<(string Command, TimeSpan? Timeout)> Seen { get; } = [];

        public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        {
            Seen.Add((command, timeout));
            if (Rebooted && _lost.Count > 0 && _lost.Peek() == command)
            {
                _lost.Dequeue();
                var limit = timeout ?? TimeSpan.FromSeconds(30);
                await Task.Delay(limit, cancellationToken);
                throw new LabTimeoutException($"the guest agent's reply to {command}", limit);
            }
            var id = Rebooted && _lost.Count == 0 ? "new" : "old";
            return command switch
            {
                "guest-file-open" => JsonNode.Parse("5"),
                "guest-file-read" => JsonNode.Parse($$"""{"count": 3, "buf-b64": "{{Convert.ToBase64String(Encoding.ASCII.GetBytes(id + "\n"))}}", "eof": true}"""),
                "guest-file-close" => JsonNode.Parse("{}"),
                _ => throw new InvalidOperationException($"unexpected agent command {command}"),
            };
        }

        public Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();
    }

    [Fact]
    public async Task Given_the_old_boot_loses_two_commands_of_a_boot_id_read_When_the_reboot_is_awaited_Then_each_costs_the_probes_limit_and_the_new_boot_is_found()
    {
        var agent = new RebootingAgent("guest-file-read", "guest-file-close");
        var probe = TimeSpan.FromMilliseconds(300);
        var sw = Stopwatch.StartNew();

        var back = await GuestReboot.RunAsync(agent, () => { agent.Rebooted = true; return Task.CompletedTask; }, _ => Task.CompletedTask,
            TimeSpan.FromMinutes(2), probe, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(back < TimeSpan.FromSeconds(10), $"back in {back}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"waited {sw.Elapsed}");
        // Every command after the request carried the probe's limit; the read before it (the old boot_id) the agent's own.
        var afterRequest = agent.Seen.Skip(3).ToList();
        Assert.NotEmpty(afterRequest);
        Assert.All(agent.Seen.Take(3), c => Assert.Null(c.Timeout));
        Assert.All(afterRequest, c => Assert.Equal(probe, c.Timeout));
    }
}
