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
public sealed class ExperimentRun
{
    private readonly List<Artifact> _artifacts = [];
    private readonly List<string> _madeFolders = [];
    private readonly List<string> _mounts = [];

    private ExperimentRun(string name, string folder, bool keep, bool ownsFolder)
    {
        Name = name;
        Folder = folder;
        KeepArtifacts = keep;
        OwnsFolder = ownsFolder;
    }

    public string Name { get; }
    public string Folder { get; }
    public bool KeepArtifacts { get; }
    private bool OwnsFolder { get; }
    public Findings Findings { get; } = new();
    public IReadOnlyList<Artifact> Artifacts => _artifacts;

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

    /// <summary>A path in the run folder for a file the lab is about to create, registered under a role.</summary>
    public string NewFile(string role, string fileName)
    {
        var path = Path.Combine(Folder, fileName);
        if (File.Exists(path))
        {
            throw new LabUsageException($"refusing to reuse existing file {path}");
        }
        _artifacts.Add(new Artifact(role, path, true));
        LabFiles.MarkCreated(path);
        return path;
    }

    /// <summary>Registers a file the lab did not create (it is never deleted).</summary>
    public void UseExisting(string role, string path) => _artifacts.Add(new Artifact(role, Path.GetFullPath(path), false));

    /// <summary>
    /// Moves <paramref name="file"/>, which the lab made, into <paramref name="subfolder"/> of the run folder (made
    /// if needed), registered there under <paramref name="role"/>; returns the new path. A file the lab did not make
    /// is refused (<see cref="ForeignImageException"/>).
    /// </summary>
    public string MoveInto(string subfolder, string file, string role)
    {
        LabFiles.EnsureMayModify(file, $"move {file} into {subfolder}");
        var folder = Path.Combine(Folder, subfolder);
        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder);
            _madeFolders.Add(folder);
        }
        var target = NewFile(role, Path.Combine(subfolder, Path.GetFileName(file)));
        File.Move(file, target);
        return target;
    }

    /// <summary>
    /// Mounts a tmpfs of <paramref name="bytes"/> at <c>FOLDER/NAME</c>: a second filesystem of the run's own, for
    /// moving files across filesystems (a copy and an unlink, unlike a rename). It is unmounted at
    /// <see cref="CleanUpAsync"/>, after its files are deleted, or, when kept, moved back into <c>FOLDER/NAME.kept</c>.
    /// Returns the mount point, or null and the reason in one line when mounting is not possible (not root).
    /// </summary>
    public async Task<(string? Path, string Why)> TryMountScratchFilesystemAsync(string name, long bytes, CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(Folder, name);
        if (Directory.Exists(path))
        {
            throw new LabUsageException($"refusing to mount over existing folder {path}");
        }
        Directory.CreateDirectory(path);
        _madeFolders.Add(path);
        var r = await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={bytes.ToString(System.Globalization.CultureInfo.InvariantCulture)},mode=0700", $"lab-{Name}", path],
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
                Directory.CreateDirectory(kept);
                for (var i = 0; i < _artifacts.Count; i++)
                {
                    var a = _artifacts[i];
                    if (Path.GetDirectoryName(a.Path) == mount && File.Exists(a.Path))
                    {
                        var to = Path.Combine(kept, Path.GetFileName(a.Path));
                        File.Move(a.Path, to);
                        _artifacts[i] = a with { Path = to };
                        LabFiles.MarkCreated(to);
                    }
                }
            }
            await ProcessRunner.RunAsync("umount", [mount], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
            _mounts.Remove(mount);
        }
    }

    public string PathOf(string role) => _artifacts.Last(a => a.Role == role).Path;

    /// <summary>Writes artifacts.json (roles, paths, who made them, sizes, and the run's findings and measurements).</summary>
    public async Task<string> WriteManifestAsync(CancellationToken cancellationToken = default)
    {
        var path = Path.Combine(Folder, "artifacts.json");
        var doc = new
        {
            experiment = Name,
            folder = Folder,
            artifacts = _artifacts.Select(a => new
            {
                role = a.Role,
                path = a.Path,
                createdByLab = a.CreatedByLab,
                exists = File.Exists(a.Path),
                bytes = File.Exists(a.Path) ? new FileInfo(a.Path).Length : 0,
            }),
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
            return $"kept {_artifacts.Count(a => File.Exists(a.Path))} artifacts in {Folder} (see {Path.GetFileName(manifest)})";
        }
        var removed = 0;
        foreach (var a in _artifacts.Where(a => a.CreatedByLab && File.Exists(a.Path)))
        {
            File.Delete(a.Path);
            removed++;
        }
        await UnmountScratchAsync(keep: false, cancellationToken).ConfigureAwait(false);
        // Subfolders MoveInto made go when they are empty.
        foreach (var sub in _madeFolders)
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
