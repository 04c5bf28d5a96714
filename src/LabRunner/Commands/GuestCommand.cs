using System.CommandLine;
using LabKernel;
using LabKernel.Guests;

namespace LabRunner.Commands;

/// <summary><c>lab guest build|exec</c>: the embedded Debian guest.</summary>
internal static class GuestCommand
{
    public static Command Create()
    {
        var cmd = new Command("guest", "Work with the embedded Debian guest (built once and cached).");
        cmd.Subcommands.Add(CreateBuild());
        cmd.Subcommands.Add(CreateExec());
        return cmd;
    }

    private static Command CreateBuild()
    {
        var cmd = new Command("build", "Build the embedded guest image now (it is otherwise built on first use).");
        cmd.SetAction(async (_, ct) =>
        {
            var image = await GuestImageBuilder.EnsureAsync(progress: new BuildProgressDisplay(), cancellationToken: ct).ConfigureAwait(false);
            Console.WriteLine(image.Directory);
            return 0;
        });
        return cmd;
    }

    private static Command CreateExec()
    {
        var profile = new Option<GuestProfile>("--profile") { Description = "lean (fast shell PID 1) or systemd", DefaultValueFactory = _ => GuestProfile.Lean };
        var ssh = new Option<bool>("--ssh") { Description = "Run the command over SSH (SSH.NET: the image's key, its host key pinned, output streamed) instead of the guest agent" };
        var argv = new Argument<string[]>("command") { Description = "The program and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("exec", "Boot the embedded guest, run a command in it through the guest agent, print its output, exit with its exit code, shut it down.")
        {
            profile, ssh, argv,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var command = parse.GetValue(argv) ?? [];
            await using var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions
            {
                Profile = parse.GetValue(profile),
                BuildProgress = new BuildProgressDisplay(),
            }, ct).ConfigureAwait(false);
            Console.Error.WriteLine($"lab: guest up in {guest.Machine.BootToAgent?.TotalSeconds:0.0} s ({guest.Machine.Accelerator.Name}: {guest.Machine.Accelerator.Reason})");
            var options = new LabKernel.GuestAgent.GuestExecOptions { Timeout = TimeSpan.FromHours(1) };
            if (parse.GetValue(ssh))
            {
                // SSH.NET, the image's key and pinned host key; output streams to the terminal as it comes.
                var shell = guest.Machine.Ssh ?? throw new LabException("the guest has no SSH access");
                await shell.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
                using var stdoutStream = Console.OpenStandardOutput();
                using var stderrStream = Console.OpenStandardError();
                var streamed = await shell.StreamAsync(command, stdoutStream, stderrStream, options, ct).ConfigureAwait(false);
                return streamed.ExitCode;
            }
            var result = await guest.Machine.Agent.ExecAsync(command, options, ct).ConfigureAwait(false);
            using (var stdout = Console.OpenStandardOutput())
            {
                stdout.Write(result.StandardOutputBytes);
            }
            using (var stderr = Console.OpenStandardError())
            {
                stderr.Write(result.StandardErrorBytes);
            }
            return result.ExitCode;
        });
        return cmd;
    }
}
