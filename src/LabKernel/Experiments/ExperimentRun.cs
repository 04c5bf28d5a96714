using System.Text.Json;
using LabKernel.Host;
using LabKernel.Processes;

namespace LabKernel.Experiments;

/// <summary>A file an experiment works with, and whether the lab made it (only those are ever deleted).</summary>
public sealed record Artifact(string Role, string Path, bool CreatedByLab);

/// <summary>
/// The working folder of one experiment run: the disk chain and other artifacts it makes, by role (base,
/// overlay1, overlay2, mirror, ...). With <see cref="KeepArtifacts"/> the chain stays, described in
/// <c>artifacts.json</c>; otherwise <see cref="CleanUpAsync"/> deletes what the lab created and nothing else.
/// </summary>
/// <remarks>
/// The run has two sides. <see cref="Folder"/> is on this machine (the manifest, reports, scratch). Its images
/// (<see cref="NewFile"/>) are made in <see cref="ImageFolder"/> on <see cref="Host"/>, the machine the guest runs on:
/// the same folder for a guest here, a fresh folder on the hypervisor for a domain on another host, every path there
/// handled through that host and never as a local file.
/// </remarks>
public sealed class ExperimentRun
{
    private readonly List<Artifact> _artifacts = [];
    private readonly List<string> _madeFolders = [];
    private readonly List<string> _mounts = [];

    private ExperimentRun(string name, string folder, bool keep, bool ownsFolder, ILabHost? host = null, string? imageFolder = null)
    {
        Name = name;
        Folder = folder;
        KeepArtifacts = keep;
        OwnsFolder = ownsFolder;
        Host = host ?? LocalHost.Instance;
        ImageFolder = imageFolder ?? folder;
    }

    public string Name { get; }

    /// <summary>The run's folder on this machine.</summary>
    public string Folder { get; }

    /// <summary>The machine the run's images are on.</summary>
    public ILabHost Host { get; }

    /// <summary>The folder on <see cref="Host"/> the run's images are made in (<see cref="Folder"/> when that is this machine).</summary>
    public string ImageFolder { get; }

    private bool Remote => !Host.IsLocal;
    public bool KeepArtifacts { get; }
    private bool OwnsFolder { get; }
    public Findings Findings { get; } = new();
    public IReadOnlyList<Artifact> Artifacts => _artifacts;

    /// <summary>
    /// The file that marks an image folder on another host as a lab run's (what <c>lab clean --uri</c> may remove):
    /// written when the folder is made, with the experiment, this machine's run folder and the time.
    /// </summary>
    public const string RunMark = ".lab-run";

    /// <summary>Where a run's image folders go on another host unless the notebook's <c>HostFolder</c> says otherwise.</summary>
    public const string DefaultHostFolder = "/var/tmp/labnotebooks";

    /// <summary>
    /// The file a run that kept its artifacts leaves beside <see cref="RunMark"/> on another host (the manifest's
    /// path here): <c>lab clean --uri</c> keeps such a folder unless asked for <c>--all</c>.
    /// </summary>
    public const string KeptMark = ".lab-kept";

    /// <summary>Creates the run folder: under <paramref name="outputFolder"/> when given, else under the cache's runs/.</summary>
    public static ExperimentRun Create(string name, bool keepArtifacts = false, string? outputFolder = null)
    {
        var stamp = $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..4]}";
        var folder = string.IsNullOrEmpty(outputFolder)
            ? Path.Combine(LabPaths.CacheRoot, "runs", $"{name}-{stamp}")
            : Path.Combine(Path.GetFullPath(outputFolder), $"{name}-{stamp}");
        Directory.CreateDirectory(folder);
        LabFiles.MarkFolder(folder);
        return new ExperimentRun(name, folder, keepArtifacts, true);
    }

    /// <summary>
    /// As <see cref="Create"/>, with the images on <paramref name="host"/>: on another host a fresh private folder
    /// under <paramref name="hostFolder"/> there (default <c>/var/tmp/labnotebooks</c>), the lab's from then on.
    /// </summary>
    public static async Task<ExperimentRun> CreateAsync(string name, ILabHost host, bool keepArtifacts = false, string? outputFolder = null, string? hostFolder = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var parent = string.IsNullOrWhiteSpace(hostFolder) ? DefaultHostFolder : hostFolder.Trim();
        if (!host.IsLocal && !parent.StartsWith('/'))
        {
            throw new LabUsageException($"HostFolder '{parent}' is not an absolute path on {host.Name}");
        }
        var local = Create(name, keepArtifacts, outputFolder);
        if (host.IsLocal)
        {
            return local;
        }
        string images;
        try
        {
            await host.CreateDirectoryAsync(parent, cancellationToken).ConfigureAwait(false);
            images = await host.CreateTempDirectoryAsync($"{Path.GetFileName(local.Folder)}-", parent, cancellationToken).ConfigureAwait(false);
            // Traversable, not listable: a domain's QEMU that runs as libvirt's qemu user (libvirt gives it the
            // overlays it opens) must reach them through this folder; the offline readers' scratch folders stay 0700.
            await host.RunAsync("chmod", ["0711", images], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            // The mark `lab clean --uri` knows the lab's folders there by (it never touches a folder without one).
            await host.WriteAllBytesAsync(Path.Combine(images, RunMark), JsonSerializer.SerializeToUtf8Bytes(new
            {
                experiment = name,
                folder = local.Folder,
                machine = Environment.MachineName,
                created = DateTime.UtcNow,
            }), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Directory.Delete(local.Folder, recursive: true);
            throw;
        }
        LabFiles.MarkFolder(images, host);
        return new ExperimentRun(name, local.Folder, keepArtifacts, true, host, images);
    }

    /// <summary>
    /// A path in <see cref="ImageFolder"/> for a file the lab is about to create, registered under a role. (On another
    /// host the folder is one the lab made empty, and every name given out is remembered, so no file is reused.)
    /// </summary>
    public string NewFile(string role, string fileName)
    {
        var path = Path.Combine(ImageFolder, fileName);
        if (Remote ? _artifacts.Any(a => a.Path == path) : File.Exists(path))
        {
            throw new LabUsageException($"refusing to reuse existing file {path}");
        }
        _artifacts.Add(new Artifact(role, path, true));
        LabFiles.MarkCreated(path, Host);
        return path;
    }

    /// <summary>Registers a file the lab did not create (it is never deleted).</summary>
    public void UseExisting(string role, string path) => _artifacts.Add(new Artifact(role, Path.GetFullPath(path), false));

    /// <summary>
    /// Moves <paramref name="file"/>, which the lab made, into <paramref name="subfolder"/> of
    /// <see cref="ImageFolder"/> (made if needed) on the run's host, registered there under <paramref name="role"/>;
    /// returns the new path. A file the lab did not make is refused (<see cref="ForeignImageException"/>).
    /// </summary>
    public async Task<string> MoveIntoAsync(string subfolder, string file, string role, CancellationToken cancellationToken = default)
    {
        LabFiles.EnsureMayModify(file, $"move {file} into {subfolder}", host: Host);
        var folder = Path.Combine(ImageFolder, subfolder);
        if (!await Host.DirectoryExistsAsync(folder, cancellationToken).ConfigureAwait(false))
        {
            await Host.CreateDirectoryAsync(folder, cancellationToken).ConfigureAwait(false);
            _madeFolders.Add(folder);
        }
        var target = NewFile(role, Path.Combine(subfolder, Path.GetFileName(file)));
        await Host.MoveFileAsync(file, target, cancellationToken).ConfigureAwait(false);
        LabFiles.Forget(file, Host);
        return target;
    }

    /// <summary>
    /// Mounts a tmpfs of <paramref name="bytes"/> at <c>IMAGEFOLDER/NAME</c> on the run's host: a second filesystem
    /// of the run's own, for moving files across filesystems (a copy and an unlink, unlike a rename). It is unmounted
    /// at <see cref="CleanUpAsync"/>, after its files are deleted, or, when kept, moved back into
    /// <c>IMAGEFOLDER/NAME.kept</c>. Returns the mount point, or null and the reason in one line when mounting is not
    /// possible (not root).
    /// </summary>
    public async Task<(string? Path, string Why)> TryMountScratchFilesystemAsync(string name, long bytes, CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(ImageFolder, name);
        if (await Host.DirectoryExistsAsync(path, cancellationToken).ConfigureAwait(false))
        {
            throw new LabUsageException($"refusing to mount over existing folder {path}");
        }
        await Host.CreateDirectoryAsync(path, cancellationToken).ConfigureAwait(false);
        _madeFolders.Add(path);
        var r = await Host.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={bytes.ToString(System.Globalization.CultureInfo.InvariantCulture)},mode=0700", $"lab-{Name}", path],
            new ProcessOptions { Check = false, Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            return (null, $"mount -t tmpfs failed: {r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? $"exit {r.ExitCode}"}");
        }
        _mounts.Add(path);
        return (path, $"a tmpfs of {bytes / 1048576} MiB at {path}");
    }

    /// <summary>Moves back what the run keeps from its scratch filesystems and unmounts them.</summary>
    private async Task UnmountScratchAsync(bool keep, CancellationToken cancellationToken)
    {
        foreach (var mount in _mounts.ToList())
        {
            if (keep)
            {
                var kept = mount + ".kept";
                await Host.CreateDirectoryAsync(kept, cancellationToken).ConfigureAwait(false);
                var movedTo = new Dictionary<string, string>(StringComparer.Ordinal);
                for (var i = 0; i < _artifacts.Count; i++)
                {
                    var a = _artifacts[i];
                    if (Path.GetDirectoryName(a.Path) == mount && await Host.FileExistsAsync(a.Path, cancellationToken).ConfigureAwait(false))
                    {
                        var to = Path.Combine(kept, Path.GetFileName(a.Path));
                        await Host.MoveFileAsync(a.Path, to, cancellationToken).ConfigureAwait(false);
                        _artifacts[i] = a with { Path = to };
                        LabFiles.Forget(a.Path, Host);
                        LabFiles.MarkCreated(to, Host);
                        movedTo[a.Path] = to;
                    }
                }
                await FollowMovedBackingFilesAsync(movedTo, cancellationToken).ConfigureAwait(false);
            }
            await Host.RunAsync("umount", [mount], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            _mounts.Remove(mount);
        }
    }

    /// <summary>
    /// Kept images whose backing file moved out of a scratch filesystem name its new place (<c>qemu-img rebase -u</c>:
    /// only the header's backing name changes, the bytes are the same file's), so every chain the run keeps opens.
    /// </summary>
    private async Task FollowMovedBackingFilesAsync(IReadOnlyDictionary<string, string> movedTo, CancellationToken cancellationToken)
    {
        if (movedTo.Count == 0)
        {
            return;
        }
        var qemuImg = Images.QemuImg.On(Host);
        foreach (var a in _artifacts.Where(a => a.CreatedByLab && a.Path.EndsWith(".qcow2", StringComparison.Ordinal)))
        {
            if (!await Host.FileExistsAsync(a.Path, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }
            var info = await qemuImg.InfoAsync(a.Path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (info.FullBackingFilename is { } backing && movedTo.TryGetValue(backing, out var to))
            {
                await qemuImg.RebaseAsync(a.Path, to, new Images.RebaseOptions { Unsafe = true, BackingFormat = info.BackingFormat }, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public string PathOf(string role) => _artifacts.Last(a => a.Role == role).Path;

    /// <summary>Writes artifacts.json (roles, paths, who made them, sizes, and the run's findings and measurements).</summary>
    public async Task<string> WriteManifestAsync(CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(Folder, "artifacts.json");
        var artifacts = new List<object>();
        foreach (var a in _artifacts)
        {
            var exists = await Host.FileExistsAsync(a.Path, cancellationToken).ConfigureAwait(false);
            artifacts.Add(new
            {
                role = a.Role,
                path = a.Path,
                createdByLab = a.CreatedByLab,
                exists,
                bytes = exists ? await Host.FileSizeAsync(a.Path, cancellationToken).ConfigureAwait(false) : 0,
            });
        }
        var doc = new
        {
            experiment = Name,
            folder = Folder,
            host = Host.Name,
            imageFolder = ImageFolder,
            artifacts,
            findings = Findings.Rows,
            measurements = Findings.Measurements,
        };
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);
        return path;
    }

    /// <summary>
    /// Keeps everything (with artifacts.json) when <see cref="KeepArtifacts"/>; otherwise deletes the files the
    /// lab created and the run folder if nothing else is left in it. Returns a one-line account.
    /// </summary>
    public async Task<string> CleanUpAsync(CancellationToken cancellationToken = default)
    {
        if (KeepArtifacts)
        {
            await UnmountScratchAsync(keep: true, cancellationToken).ConfigureAwait(false);
            var manifest = await WriteManifestAsync(cancellationToken).ConfigureAwait(false);
            if (Remote)
            {
                await Host.WriteAllBytesAsync(Path.Combine(ImageFolder, KeptMark), System.Text.Encoding.UTF8.GetBytes(manifest + "\n"), cancellationToken).ConfigureAwait(false);
            }
            var kept = 0;
            foreach (var a in _artifacts)
            {
                kept += await Host.FileExistsAsync(a.Path, cancellationToken).ConfigureAwait(false) ? 1 : 0;
            }
            return $"kept {kept} artifacts in {(Remote ? $"{ImageFolder} on {Host.Name}" : Folder)} (see {Path.Combine(Folder, Path.GetFileName(manifest))})";
        }
        var removed = 0;
        foreach (var a in _artifacts.Where(a => a.CreatedByLab))
        {
            if (await Host.FileExistsAsync(a.Path, cancellationToken).ConfigureAwait(false))
            {
                await Host.DeleteFileAsync(a.Path, cancellationToken).ConfigureAwait(false);
                LabFiles.Forget(a.Path, Host);
                removed++;
            }
        }
        await UnmountScratchAsync(keep: false, cancellationToken).ConfigureAwait(false);
        if (Remote)
        {
            // The folder there is the lab's (made empty for this run): what readers left in it goes with it.
            await Host.DeleteDirectoryAsync(ImageFolder, recursive: true, cancellationToken).ConfigureAwait(false);
        }
        // Subfolders MoveIntoAsync made go when they are empty (on another host the whole image folder goes below).
        foreach (var sub in _madeFolders.Where(_ => !Remote))
        {
            if (Directory.Exists(sub) && !Directory.EnumerateFileSystemEntries(sub).Any())
            {
                Directory.Delete(sub);
            }
        }
        if (OwnsFolder && Directory.Exists(Folder) && !Directory.EnumerateFileSystemEntries(Folder).Any(e => !IsScratch(e)))
        {
            Directory.Delete(Folder, recursive: true);
        }
        return $"removed {removed} files the lab created; kept {_artifacts.Count(a => !a.CreatedByLab)} it did not";
    }

    // What the run's guest and readers leave in the folder besides the registered artifacts: the guest's own overlay,
    // scratch copies of layers read offline, and the serial console log libvirt writes for a lab-made domain.
    private static bool IsScratch(string entry)
    {
        var name = Path.GetFileName(entry);
        return name.StartsWith("root-overlay", StringComparison.Ordinal) || name.StartsWith("layer-read-", StringComparison.Ordinal) || name == "serial.log";
    }
}
