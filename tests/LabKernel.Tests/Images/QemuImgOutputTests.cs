using System.Diagnostics;
using LabKernel.Images;
using LabKernel.Processes;
using LabKernel.Tests.GuestAgent;

namespace LabKernel.Tests.Images;

/// <summary>
/// qemu-img output that is not the JSON the lab expects (another program on PATH, a crash mid-write, a version that
/// changed its output): the call fails with <see cref="QemuImgException"/> "unreadable output" naming the command
/// line, never with a JSON, null or range exception.
/// </summary>
public sealed class QemuImgOutputTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Each qemu-img reader the lab has, by subcommand, with the parser its call uses.</summary>
    private static readonly (string Subcommand, string Sample, Func<string, object> Parse)[] Readers =
    [
        ("info", "info-single.json", json => ImageInfo.Parse(json)),
        ("info", "info-chain.json", json => BackingChain.Parse(json)),
        ("map", "map-chain.json", json => AllocationMap.Parse(json)),
        ("check", "check-leaks.json", json => CheckResult.Parse(json, 0, "")),
        ("measure", "measure.json", json => MeasureResult.Parse(json)),
    ];

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        string[] outputs =
        [
            "qemu-img: unknown option --output=json",             // not JSON
            "{\"filename\": \"a.qcow2\", \"virtual-size\": 10737", // truncated JSON
            "[1, 2, 3]",                                          // a JSON array where an object is expected (and numbers in a list)
            "",                                                   // nothing at all
            "null",
            "\"a.qcow2\"",
            "{}",                                                 // an object without the members the lab needs
            "{\"filename\": \"a.qcow2\", \"virtual-size\": 1e300, \"required\": 1e300, \"fully-allocated\": 1}",
            "{\"filename\": \"a\", \"virtual-size\": 1, \"snapshots\": [{\"date-sec\": 9223372036854775807, \"vm-clock-sec\": 9223372036854775807}]}",
        ];
        foreach (var o in outputs)
        {
            for (var i = 0; i < Readers.Length; i++)
            {
                data.Add(o, i);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Given_output_that_is_not_the_expected_json_When_parsed_Then_it_is_a_QemuImgException_saying_unreadable_output(string stdout, int reader)
    {
        var (subcommand, _, parse) = Readers[reader];
        var r = new ProcessResult("qemu-img", [subcommand, "--output=json", "a.qcow2"], 0, stdout, "", TimeSpan.Zero);

        var outcome = Record.Exception(() => QemuImg.Parse(r, subcommand, parse));

        // check reads every member as optional (its verdict comes from the exit code too), so any object is a result;
        // every other outcome must be the typed error.
        if (outcome is null)
        {
            Assert.True(subcommand == "check" && stdout.StartsWith('{') && stdout.EndsWith('}'), $"{subcommand} accepted {stdout}");
            return;
        }
        var e = Assert.IsType<QemuImgException>(outcome);
        Assert.Contains("unreadable output", e.Message, StringComparison.Ordinal);
        Assert.Contains($"qemu-img {subcommand} --output=json a.qcow2", e.Message, StringComparison.Ordinal);
        Assert.Equal(subcommand, e.Subcommand);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Given_real_qemu_img_output_truncated_flipped_or_retyped_When_parsed_Then_it_parses_or_is_a_QemuImgException()
    {
        var rng = new Random(20261206);
        var iterations = 0;
        var rejected = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(1))
        {
            var (subcommand, sample, parse) = Readers[rng.Next(Readers.Length)];
            var text = System.Text.Encoding.UTF8.GetString(GuestAgentFuzzTests.Mutate(System.Text.Encoding.UTF8.GetBytes(Samples.Read(sample).ReplaceLineEndings("")), rng));
            var r = new ProcessResult("qemu-img", [subcommand], 0, text, "", TimeSpan.Zero);
            var outcome = Record.Exception(() => QemuImg.Parse(r, subcommand, parse));
            Assert.True(outcome is null or QemuImgException, $"{outcome?.GetType().Name} ({outcome?.Message}) parsing {subcommand} output: {text}");
            if (outcome is not null)
            {
                Assert.Contains("unreadable output", outcome.Message, StringComparison.Ordinal);
                Assert.DoesNotContain('\n', outcome.Message);
            }
            rejected += outcome is null ? 0 : 1;
            iterations++;
        }
        output.WriteLine($"{iterations} outputs in 1 s, {rejected} rejected as unreadable");
        Assert.True(rejected > 0 && rejected < iterations, $"{rejected} of {iterations} rejected");
    }
}
