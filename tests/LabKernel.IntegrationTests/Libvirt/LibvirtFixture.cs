using System.Globalization;
using LabKernel.GuestAgent;
using LabKernel.Images;
using LabKernel.Libvirt;
using LabKernel.Processes;

namespace LabKernel.IntegrationTests.Libvirt;

/// <summary>
/// One embedded guest booted as a persistent libvirt domain (TCG, unique name, overlay1 on the cached base in a
/// unique temp folder), shared by the libvirt collection. Each test leaves it running on overlay1; disposing
/// destroys and undefines it and removes the folder.
/// </summary>
public sealed class LibvirtFixture : IAsyncLifetime
{
    public LibvirtConnection Connection { get; private set; } = null!;
    public LibvirtGuest Guest { get; private set; } = null!;
    public LibvirtDomain Domain => Guest.Domain;
    public string PathOf(string name) => Guest.PathOf(name);

    public async Task InitializeAsync()
    {
        await EnsureLibvirtdAsync();
        Connection = await LibvirtConnection.OpenAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        Guest = await LibvirtGuest.CreateAsync(Connection, new LibvirtGuestOptions { Name = "labvirt-" + Guid.NewGuid().ToString("N")[..8] }, cts.Token);
    }

    /// <summary>
    /// Captures vda's chain; disposing restores it when a test left the domain elsewhere (a failed assertion must
    /// not leave the next test a different chain) and makes sure the domain runs.
    /// </summary>
    public async Task<ChainScope> ScopeAsync(LibvirtDomain? through = null)
    {
        var d = through ?? Domain;
        return new ChainScope(d, await d.CaptureChainAsync("vda"));
    }

    public sealed class ChainScope(LibvirtDomain domain, DiskChainState start) : IAsyncDisposable
    {
        public DiskChainState Start => start;

        public async ValueTask DisposeAsync()
        {
            var now = await domain.CaptureChainAsync("vda");
            if (!now.Chain.SequenceEqual(start.Chain) || !now.SnapshotNames.SequenceEqual(start.SnapshotNames))
            {
                await domain.RestoreChainAsync(start, restart: true);
            }
            if (await domain.GetStateAsync() != DomainState.Running)
            {
                await domain.StartAsync();
                await domain.WaitForAgentAsync(TimeSpan.FromMinutes(3));
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (Guest is not null)
        {
            await Guest.DisposeAsync();
            if (Guest.CleanupError is not null)
            {
                // libvirtd went away under the domain (another session stopped it): start it again, which
                // reattaches to the running QEMU, and remove the domain through a fresh connection.
                await EnsureLibvirtdAsync();
                await using var again = await LibvirtConnection.OpenAsync();
                if (await again.DomainExistsAsync(Guest.Domain.Name))
                {
                    using var d = await again.LookupDomainAsync(Guest.Domain.Name);
                    await d.DestroyAsync();
                    await d.UndefineAsync();
                }
                Directory.Delete(Guest.WorkFolder, recursive: true);
            }
        }
        if (Connection is not null)
        {
            await Connection.DisposeAsync();
        }
    }

    /// <summary>Starts virtlogd/libvirtd when they are not running (scripts/libvirtd-up; no systemd here).</summary>
    public static Task EnsureLibvirtdAsync() =>
        ProcessRunner.RunAsync(Path.Combine(RepoRoot(), "scripts", "libvirtd-up"), [], new ProcessOptions { Timeout = TimeSpan.FromSeconds(60) });

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "LabNotebooks.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new InvalidOperationException("repository root not found");
    }
}

[CollectionDefinition(Name)]
public sealed class LibvirtCollection : ICollectionFixture<LibvirtFixture>
{
    public const string Name = "libvirt domain";
}

/// <summary>What a guest file looked like in one layer, read offline.</summary>
/// <param name="Lines">Complete lines that are exactly 1..Lines.</param>
/// <param name="Consistent">The file is 1..Lines, possibly followed by a partial next number and zero bytes, nothing else.</param>
/// <param name="Detail">Where it stopped being a prefix, when it did.</param>
public sealed record NumberPrefix(int Lines, bool Consistent, string Detail);

/// <summary>The 000 procedure's guest writer and its offline check.</summary>
public static class NumberFile
{
    public const string GuestPath = "/root/num.txt";

    /// <summary>awk writing 1..n, one per line, flushing every 1000 lines.</summary>
    public static IReadOnlyList<string> WriterArgv(int n) =>
        ["/usr/bin/awk", string.Create(CultureInfo.InvariantCulture, $"BEGIN{{for(i=1;i<={n};i++){{print i > \"{GuestPath}\"; if(i%1000==0) fflush(\"{GuestPath}\")}}; close(\"{GuestPath}\")}}")];

    /// <summary>
    /// Reads /root/num.txt from the guest filesystem in <paramref name="image"/> (with its chain) without the guest:
    /// <c>qemu-img convert -U -O raw</c> into a temp copy, <c>e2fsck -fy -E journal_only</c> on the copy (replays
    /// the journal, as a mount would), <c>debugfs -R 'dump ...'</c>. Returns null when the file does not exist there.
    /// </summary>
    public static async Task<byte[]?> ReadOfflineAsync(string image, string scratchFolder)
    {
        var raw = Path.Combine(scratchFolder, $"copy-{Guid.NewGuid():N}.raw");
        var dump = raw + ".num";
        try
        {
            await QemuImg.Local.ConvertAsync(image, raw, "raw", new ConvertOptions { ForceShare = true });
            await ProcessRunner.RunAsync("e2fsck", ["-fy", "-E", "journal_only", raw], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(2) });
            await ProcessRunner.RunAsync("debugfs", ["-R", $"dump {GuestPath} {dump}", raw], new ProcessOptions { Check = false, Timeout = TimeSpan.FromMinutes(2) });
            return File.Exists(dump) ? await File.ReadAllBytesAsync(dump) : null;
        }
        finally
        {
            File.Delete(raw);
            File.Delete(dump);
        }
    }

    public static NumberPrefix Check(byte[]? content)
    {
        if (content is null)
        {
            return new NumberPrefix(0, true, "no file");
        }
        var text = System.Text.Encoding.ASCII.GetString(content).TrimEnd('\0');
        var lines = text.Split('\n');
        var n = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var last = i == lines.Length - 1;
            var expected = (n + 1).ToString(CultureInfo.InvariantCulture);
            if (lines[i] == expected && !last)
            {
                n++;
                continue;
            }
            if (last && (lines[i].Length == 0 || expected.StartsWith(lines[i], StringComparison.Ordinal)))
            {
                return new NumberPrefix(n, true, lines[i].Length == 0 ? "ends after a whole line" : $"ends in a partial line '{lines[i]}'");
            }
            return new NumberPrefix(n, false, $"line {i + 1} is '{(lines[i].Length > 20 ? lines[i][..20] : lines[i])}', expected {expected}");
        }
        return new NumberPrefix(n, true, "");
    }

    /// <summary>Lines in the guest's file right now (wc -l through the agent).</summary>
    public static async Task<int> GuestLinesAsync(IGuestShell guest)
    {
        var r = await guest.ExecAsync(["/bin/sh", "-c", $"[ -f {GuestPath} ] && wc -l < {GuestPath} || echo 0"], new GuestExecOptions { Check = true });
        return int.Parse(r.StandardOutput.Trim(), CultureInfo.InvariantCulture);
    }
}
