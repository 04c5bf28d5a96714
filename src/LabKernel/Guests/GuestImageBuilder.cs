using System.Diagnostics;
using System.Text.Json;
using LabKernel.Host;
using LabKernel.Processes;

namespace LabKernel.Guests;

/// <summary>A step of the image build, for progress displays.</summary>
public sealed record GuestBuildProgress(string Stage, string Message);

/// <summary>
/// Builds the embedded Debian guest once and caches it under <c>{cache}/images/debian-{suite}-{hash}</c>:
/// debootstrap from the machine's configured mirror into a temporary folder, the lab's init scripts and an SSH
/// key, <c>mkfs.ext4 -d</c> and <c>qemu-img convert</c> to qcow2. The folder is renamed into place only when
/// complete, so an interrupted build leaves nothing that looks usable. A lock file keeps concurrent builds out.
/// </summary>
public static class GuestImageBuilder
{
    public static GuestRecipe DefaultRecipe { get; } = new();

    /// <summary>The folder a recipe's image lives in.</summary>
    public static string ImageFolder(GuestRecipe recipe) =>
        Path.Combine(LabPaths.CacheRoot, "images", $"debian-{recipe.Suite}-{recipe.Hash()}");

    /// <summary>The cached image for the recipe, or null when it has not been built.</summary>
    public static GuestImage? TryGetCached(GuestRecipe? recipe = null)
    {
        recipe ??= DefaultRecipe;
        var dir = ImageFolder(recipe);
        return GuestImage.IsComplete(dir) ? new GuestImage(dir, recipe.Hash()) : null;
    }

    /// <summary>Returns the cached image, building it first when it is missing.</summary>
    public static async Task<GuestImage> EnsureAsync(GuestRecipe? recipe = null, IProgress<GuestBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        recipe ??= DefaultRecipe;
        if (TryGetCached(recipe) is { } cached)
        {
            return cached;
        }
        var imagesDir = Path.Combine(LabPaths.CacheRoot, "images");
        Directory.CreateDirectory(imagesDir);
        await using var _ = await FileLock.AcquireAsync(Path.Combine(imagesDir, $".build-{recipe.Hash()}.lock"), TimeSpan.FromMinutes(30), "another process building the guest image", cancellationToken).ConfigureAwait(false);
        if (TryGetCached(recipe) is { } builtMeanwhile)
        {
            return builtMeanwhile;
        }
        return await BuildAsync(recipe, progress, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<GuestImage> BuildAsync(GuestRecipe recipe, IProgress<GuestBuildProgress>? progress, CancellationToken cancellationToken)
    {
        if (!LabPaths.IsRoot)
        {
            throw new LabException("building the guest image needs root (debootstrap); run scripts/setup as root or build it once with `sudo scripts/lab guest build`");
        }
        foreach (var tool in new[] { "debootstrap", "mkfs.ext4", "qemu-img", "ssh-keygen" })
        {
            if (ProcessRunner.Which(tool) is null)
            {
                throw new LabException($"{tool} is missing; scripts/setup installs it");
            }
        }
        var hash = recipe.Hash();
        var final = ImageFolder(recipe);
        var work = Path.Combine(Path.GetDirectoryName(final)!, $".tmp-{hash}-{Environment.ProcessId}");
        if (Directory.Exists(work))
        {
            Directory.Delete(work, recursive: true);
        }
        Directory.CreateDirectory(work);
        var rootfs = Path.Combine(work, "rootfs");
        var sw = Stopwatch.StartNew();
        void Report(string stage, string message) => progress?.Report(new GuestBuildProgress(stage, message));
        try
        {
            var mirror = DebianMirror.Find();
            Report("debootstrap", $"{recipe.Suite} ({recipe.Variant}) from {mirror}");
            await ProcessRunner.RunAsync("debootstrap",
                [$"--variant={recipe.Variant}", $"--include={string.Join(',', recipe.Packages)}", recipe.Suite, rootfs, mirror],
                new ProcessOptions
                {
                    Timeout = TimeSpan.FromMinutes(30),
                    OnOutputLine = line =>
                    {
                        if (line.StartsWith("I: ", StringComparison.Ordinal))
                        {
                            Report("debootstrap", line[3..]);
                        }
                    },
                }, cancellationToken).ConfigureAwait(false);

            Report("customize", "init scripts, SSH key, networking");
            await CustomizeAsync(rootfs, work, cancellationToken).ConfigureAwait(false);

            Report("kernel", "copying the kernel and initrd for direct boot");
            var boot = Path.Combine(rootfs, "boot");
            File.Copy(Directory.GetFiles(boot, "vmlinuz-*").Order(StringComparer.Ordinal).Last(), Path.Combine(work, "vmlinuz"));
            File.Copy(Directory.GetFiles(boot, "initrd.img-*").Order(StringComparer.Ordinal).Last(), Path.Combine(work, "initrd.img"));
            LeanInitramfs.Build(rootfs, Path.Combine(work, "initrd-lean.img"));
            Report("slim", $"dropping what the guest never reads ({string.Join(", ", SlimmedFolders)})");
            Slim(rootfs);

            Report("filesystem", $"mkfs.ext4 -d ({recipe.DiskBytes >> 30} GiB virtual)");
            var raw = Path.Combine(work, "root.raw");
            await ProcessRunner.RunAsync("mkfs.ext4", ["-q", "-F", "-L", "labroot", "-d", rootfs, raw, $"{recipe.DiskBytes / 1024}K"],
                new ProcessOptions { Timeout = TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
            Report("qcow2", "qemu-img convert -O qcow2");
            var qcow2 = Path.Combine(work, "base.qcow2");
            await ProcessRunner.RunAsync("qemu-img", ["convert", "-O", "qcow2", raw, qcow2],
                new ProcessOptions { Timeout = TimeSpan.FromMinutes(10) }, cancellationToken).ConfigureAwait(false);
            File.Delete(raw);
            Directory.Delete(rootfs, recursive: true);
            // The base is shared by every run: nothing may write it.
            File.SetUnixFileMode(qcow2, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            await File.WriteAllTextAsync(Path.Combine(work, "recipe.json"), JsonSerializer.Serialize(new
            {
                recipe,
                hash,
                mirror,
                built = DateTimeOffset.UtcNow,
                seconds = Math.Round(sw.Elapsed.TotalSeconds, 1),
            }, new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);
            if (Directory.Exists(final))
            {
                Directory.Delete(final, recursive: true); // an incomplete leftover: IsComplete said no
            }
            Directory.Move(work, final);
            Report("done", $"guest image ready in {sw.Elapsed.TotalSeconds:0} s: {final}");
            return new GuestImage(final, hash);
        }
        catch
        {
            LabPaths.TryDeleteFolder(work);
            throw;
        }
    }

    /// <summary>
    /// Folders of the root filesystem emptied before <c>mkfs.ext4 -d</c>: the downloaded packages and package lists
    /// (the guest has no network to install more), documentation and translations, and <c>/boot</c> (its kernel and
    /// initrd are copied next to the image: QEMU boots them directly). About 270 of 605 MiB; every full mirror,
    /// backup, copy and hash of the base reads that much less.
    /// </summary>
    public static readonly IReadOnlyList<string> SlimmedFolders =
        ["var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "boot"];

    private static void Slim(string rootfs)
    {
        foreach (var folder in SlimmedFolders)
        {
            var dir = new DirectoryInfo(Path.Combine(rootfs, folder));
            if (!dir.Exists)
            {
                continue;
            }
            foreach (var entry in dir.EnumerateFileSystemInfos())
            {
                // apt keeps its lock files and partial/ folders; they are empty.
                if (entry.Name is "lock" or "partial")
                {
                    continue;
                }
                if (entry is DirectoryInfo { LinkTarget: null } d)
                {
                    d.Delete(recursive: true);
                }
                else
                {
                    entry.Delete();
                }
            }
        }
    }

    private static async Task CustomizeAsync(string rootfs, string work, CancellationToken cancellationToken)
    {
        const UnixFileMode Exec = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                  UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        var lab = Path.Combine(rootfs, "usr/local/lib/lab");
        Directory.CreateDirectory(lab);
        await WriteAsync(Path.Combine(lab, "init"), GuestResources.Read("lab-init"), Exec).ConfigureAwait(false);
        await WriteAsync(Path.Combine(lab, "poweroff"), GuestResources.Read("lab-poweroff"), Exec).ConfigureAwait(false);
        // qemu-ga's guest-shutdown runs /sbin/shutdown (-r to reboot), and a user types reboot: route both to systemd
        // or to the lean power-off / reboot.
        foreach (var command in new[] { "shutdown", "reboot" })
        {
            var path = Path.Combine(rootfs, "usr/sbin", command);
            File.Delete(path);
            await WriteAsync(path, GuestResources.Read("lab-shutdown"), Exec).ConfigureAwait(false);
        }

        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc/hostname"), "labguest\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc/hosts"), "127.0.0.1 localhost\n127.0.1.1 labguest\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc/fstab"), "/dev/vda / ext4 defaults 0 1\n", cancellationToken).ConfigureAwait(false);

        // Systemd profile: DHCP on the user-mode network so sshd is reachable.
        var network = Path.Combine(rootfs, "etc/systemd/network");
        Directory.CreateDirectory(network);
        await File.WriteAllTextAsync(Path.Combine(network, "50-lab.network"), GuestResources.Read("lab.network"), cancellationToken).ConfigureAwait(false);
        var wants = Path.Combine(rootfs, "etc/systemd/system/multi-user.target.wants");
        Directory.CreateDirectory(wants);
        var link = Path.Combine(wants, "systemd-networkd.service");
        if (!File.Exists(link))
        {
            File.CreateSymbolicLink(link, "/lib/systemd/system/systemd-networkd.service");
        }

        // The SSH key pair lives with the image it is authorized in.
        var key = Path.Combine(work, "id_ed25519");
        await ProcessRunner.RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "labnotebooks", "-f", key], cancellationToken: cancellationToken).ConfigureAwait(false);
        var ssh = Path.Combine(rootfs, "root/.ssh");
        Directory.CreateDirectory(ssh, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await WriteAsync(Path.Combine(ssh, "authorized_keys"), await File.ReadAllTextAsync(key + ".pub", cancellationToken).ConfigureAwait(false), UnixFileMode.UserRead | UnixFileMode.UserWrite).ConfigureAwait(false);
        var hostKey = (await File.ReadAllTextAsync(Path.Combine(rootfs, "etc/ssh/ssh_host_ed25519_key.pub"), cancellationToken).ConfigureAwait(false)).Trim();
        var parts = hostKey.Split(' ');
        await File.WriteAllTextAsync(Path.Combine(work, "known_hosts"), $"* {parts[0]} {parts[1]}\n", cancellationToken).ConfigureAwait(false);
    }

    private static async Task WriteAsync(string path, string content, UnixFileMode mode)
    {
        await File.WriteAllTextAsync(path, content).ConfigureAwait(false);
        File.SetUnixFileMode(path, mode);
    }
}
