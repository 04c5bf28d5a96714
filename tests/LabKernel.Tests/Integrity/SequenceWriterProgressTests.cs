using System.Text;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

/// <summary>
/// The guest writer rewrites its progress file in place (truncate, then write), so a read can land between the two and
/// find it empty. Such a read is taken again at once; if it stays empty the last reading stands (progress never goes
/// back), so "writer at 0 right after the snapshot" cannot appear. A stand-in agent answers the file reads from a script.
/// </summary>
public sealed class SequenceWriterProgressTests
{
    /// <summary>
    /// An agent whose progress file reads, in turn, as the texts given (null: the file does not exist). Replies are
    /// parsed JSON, as the real client hands them over.
    /// </summary>
    private sealed class ScriptedAgent(params string?[] reads) : IGuestAgent
    {
        private readonly Queue<string?> _reads = new(reads);
        private string? _open;

        public int FileReads { get; private set; }

        /// <summary>After this many file reads, guest-exec-status says the writer has exited 0.</summary>
        public int ExitedAfterReads { get; init; } = int.MaxValue;

        public Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        {
            JsonNode? reply;
            switch (command)
            {
                case "guest-exec":
                    reply = JsonNode.Parse("""{"pid": 7}""");
                    break;
                case "guest-exec-status":
                    reply = JsonNode.Parse(FileReads >= ExitedAfterReads ? """{"exited": true, "exitcode": 0}""" : """{"exited": false}""");
                    break;
                case "guest-file-open":
                    FileReads++;
                    _open = _reads.Dequeue();
                    if (_open is null)
                    {
                        return Task.FromException<JsonNode?>(new GuestAgentErrorException(command, "GenericError", "failed to open file '/root/num.txt.progress' (mode: 'r'): No such file or directory"));
                    }
                    reply = JsonNode.Parse("1000");
                    break;
                case "guest-file-read":
                    var bytes = Encoding.ASCII.GetBytes(_open!);
                    reply = JsonNode.Parse($$"""{"count": {{bytes.Length}}, "buf-b64": "{{Convert.ToBase64String(bytes)}}", "eof": true}""");
                    break;
                case "guest-file-close":
                    reply = JsonNode.Parse("{}");
                    break;
                default:
                    throw new InvalidOperationException($"unexpected agent command {command}");
            }
            return Task.FromResult<JsonNode?>(reply);
        }

        public Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new GuestExecResult(argv, 0, [], [], TimeSpan.Zero));
    }

    [Fact]
    public async Task Given_reads_caught_between_the_writers_truncate_and_write_When_progress_is_read_Then_it_is_read_again_and_never_goes_back()
    {
        // Before the first progress: absent. Then 1000; then empty three times (the file caught mid-rewrite each time);
        // then empty once, and 3000 on the read taken again at once.
        var agent = new ScriptedAgent(null, null, null, "1000\n", "", "", "", "", "3000\n");
        var writer = await SequenceWriter.StartAsync(agent, new SequenceWriterOptions { Count = 4_000_000 });

        Assert.Equal(0, await writer.ReadProgressAsync());
        Assert.Equal(3, agent.FileReads);
        Assert.Equal(1000, await writer.ReadProgressAsync());
        Assert.Equal(4, agent.FileReads);
        // Three reads find the file empty: the last reading stands, not 0.
        Assert.Equal(1000, await writer.ReadProgressAsync());
        Assert.Equal(7, agent.FileReads);
        // One empty read, then the value: read again at once.
        Assert.Equal(3000, await writer.ReadProgressAsync());
        Assert.Equal(9, agent.FileReads);
        Assert.Equal([0L, 0, 1000, 1000, 3000], writer.Samples.Select(s => s.Lines));
    }

    /// <summary>
    /// A writer that flushes its last lines between a progress reading and the check that it exited (seen in a run
    /// with the snapshot one line before the end): the wait reads the progress once more and has reached its point;
    /// a writer that exited short of it is still an error naming the final count.
    /// </summary>
    [Theory]
    [InlineData("20000\n", true)]
    [InlineData("19000\n", false)]
    public async Task Given_a_writer_that_exits_right_after_a_stale_reading_When_waited_for_Then_its_final_progress_decides(string final, bool reached)
    {
        var agent = new ScriptedAgent("19000\n", final) { ExitedAfterReads = 1 };
        var writer = await SequenceWriter.StartAsync(agent, new SequenceWriterOptions { Count = 20_000 });

        if (reached)
        {
            Assert.Equal(20_000, await writer.WaitForLinesAsync(19_999, TimeSpan.FromSeconds(10)));
        }
        else
        {
            var e = await Assert.ThrowsAsync<LabException>(() => writer.WaitForLinesAsync(19_999, TimeSpan.FromSeconds(10)));
            Assert.Contains("exited (0) at 19000 lines before reaching 19999", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(2, agent.FileReads);
    }
}
