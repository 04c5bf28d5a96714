using System.Text;
using LabKernel.GuestAgent;
using LabKernel.Integrity;
using LabKernel.Processes;

namespace LabKernel.Tests.Integrity;

/// <summary>Runs argv here as the agent would run it in the guest (<c>guest-exec</c>: argv, no shell unless named).</summary>
internal sealed class LocalShell(string cwd) : IGuestShell
{
    public List<IReadOnlyList<string>> Commands { get; } = [];

    public async Task<GuestExecResult> ExecAsync(IReadOnlyList<string> argv, GuestExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        Commands.Add(argv);
        var r = await ProcessRunner.RunAsync(argv[0], argv.Skip(1), new ProcessOptions { Check = false, WorkingDirectory = cwd, Timeout = TimeSpan.FromMinutes(1) }, cancellationToken);
        var result = new GuestExecResult(argv, r.ExitCode, Encoding.UTF8.GetBytes(r.StandardOutput), Encoding.UTF8.GetBytes(r.StandardError), r.Duration);
        return options?.Check == true ? result.EnsureSuccess() : result;
    }
}

/// <summary>
/// A copy of a guest's files on this host, read as the lab reads a copied disk (<see cref="IFileView"/>): the guest
/// path <c>/x/y</c> is the host file <c>ROOT/x/y</c>.
/// </summary>
internal sealed class LocalCopyView(string root) : IFileView
{
    public string HostPath(string guestPath) => Path.Join(root, guestPath);

    public Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult(File.Exists(HostPath(path)) || Directory.Exists(HostPath(path)));

    public Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default) => File.ReadAllBytesAsync(HostPath(path), cancellationToken);
}
