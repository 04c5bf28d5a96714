using System.Diagnostics;
using LabKernel.GuestAgent;
using LabKernel.Processes;

namespace LabKernel.Ssh;

/// <summary>Where and how to reach a guest's sshd with the system OpenSSH client.</summary>
/// <remarks>With a <c>ControlPath</c>, one master connection is kept there and later commands reuse it
/// (a key exchange costs seconds on an emulated CPU).</remarks>
public sealed record SshTarget(string Host, int Port, string User, string PrivateKey, string KnownHostsFile, string? ControlPath = null);

/// <summary>
/// Runs guest commands over the system OpenSSH client: key authentication only, the guest's host key pinned
/// through a known_hosts file, BatchMode so it never prompts. The argv is quoted for the remote shell (sshd
/// always hands the command to the user's shell), so arguments arrive unchanged.
/// </summary>
public sealed class SshGuestShell(SshTarget target) : IGuestShell
{
    public SshTarget Target { get; } = target;

    /// <summary>The ssh arguments before the remote command; a user can paste them to log in the same way.</summary>
    public IReadOnlyList<string> BaseArguments =>
    [
        .. Target.ControlPath is null ? Array.Empty<string>() : ["-o", "ControlMaster=auto", "-o", $"ControlPath={Target.ControlPath}", "-o", "ControlPersist=120"],
        "-p", Target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "-i", Target.PrivateKey,
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", "StrictHostKeyChecking=yes",
        "-o", $"UserKnownHostsFile={Target.KnownHostsFile}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR",
        $"{Target.User}@{Target.Host}",
    ];

    public async Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new GuestExecOptions();
        var remote = ShellQuote.Join(argv);
        if (options.Environment is { Count: > 0 } env)
        {
            remote = "env " + ShellQuote.Join(env) + " " + remote;
        }
        var sw = Stopwatch.StartNew();
        ProcessResult r;
        try
        {
            r = await ProcessRunner.RunAsync("ssh", [.. BaseArguments, "--", remote],
                new ProcessOptions { Timeout = options.Timeout, Check = false, StandardInput = options.Input }, cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            throw new LabTimeoutException($"guest command `{remote}` over SSH to exit", options.Timeout);
        }
        if (r.ExitCode == 255)
        {
            throw new LabException($"ssh to {Target.User}@{Target.Host}:{Target.Port} failed: {r.StandardError.Trim().Split('\n')[^1]}");
        }
        var result = new GuestExecResult(argv.ToArray(), r.ExitCode, System.Text.Encoding.UTF8.GetBytes(r.StandardOutput), System.Text.Encoding.UTF8.GetBytes(r.StandardError), sw.Elapsed);
        return options.Check ? result.EnsureSuccess() : result;
    }

    /// <summary>Retries a trivial command until sshd accepts the key, or the limit passes.</summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var sw = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(50);
        string last = "";
        while (sw.Elapsed < timeout)
        {
            try
            {
                var r = await ExecAsync(["true"], new GuestExecOptions { Timeout = TimeSpan.FromSeconds(15) }, cancellationToken).ConfigureAwait(false);
                if (r.Succeeded)
                {
                    return;
                }
                last = $"exit {r.ExitCode}";
            }
            catch (LabException e)
            {
                last = e.Message;
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
        throw new LabTimeoutException($"sshd on {Target.Host}:{Target.Port} to accept the lab's key", timeout, last);
    }
}
