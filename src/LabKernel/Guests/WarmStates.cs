using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Machines;
using LabKernel.Processes;

namespace LabKernel.Guests;

/// <summary>How a guest was started: cold (booted) or warm (restored from a saved state), and why.</summary>
/// <param name="Warm">True when the guest was restored from a saved state.</param>
/// <param name="Why">One line: why this start (e.g. "no saved state for this configuration yet: saved one").</param>
/// <param name="State">The state's folder, when one was used or saved.</param>
public sealed record GuestStart(bool Warm, string Why, string? State = null)
{
    public override string ToString() => Warm ? $"warm start: {Why}" : $"cold boot: {Why}";
}

/// <summary>
/// Saved VM states of the embedded guest, for warm starts: the first cold boot of a configuration saves one in the
/// cache (<c>states/KEY/</c>: the migration stream <c>state.bin</c>, the root disk's top layer <c>root.qcow2</c> as it
/// was at that instant, and <c>key.json</c>); later starts of the same configuration copy that layer into the run's
/// fresh top overlay and load the state into a new QEMU (<c>-incoming</c>) instead of booting. The key covers
/// everything that must match: the base image's SHA-256, kernel and initramfs, QEMU's version, machine type, memory,
/// CPUs, accelerator and CPU model (the host's under KVM), kernel command line and the device list. Anything that does not match, a missing, changed or
/// corrupt state, or a restore that fails gives a cold boot with a one-line reason (<see cref="GuestStart"/>, the
/// journal and <c>lab doctor</c>). <c>LAB_WARM=0</c> turns warm starts off.
/// </summary>
public static class WarmStates
{
    // 2: the accelerator's QEMU arguments (the CPU model) and, under KVM, the host's CPU are part of the key.
    private const int Format = 2;
    private const int Keep = 6;

    /// <summary>Where the states are kept.</summary>
    public static string Folder => Path.Combine(LabPaths.CacheRoot, "states");

    /// <summary>False when <c>LAB_WARM=0</c> (or <c>false</c>/<c>no</c>/<c>off</c>).</summary>
    public static bool EnabledByEnvironment => !IsOff(Environment.GetEnvironmentVariable("LAB_WARM"));

    /// <summary>Whether a <c>LAB_WARM</c> value turns warm starts off: <c>0</c>, <c>false</c>, <c>no</c>, <c>off</c>.</summary>
    internal static bool IsOff(string? value) => value?.Trim().ToLowerInvariant() is "0" or "false" or "no" or "off";

    /// <summary>
    /// What must match for a state to be loaded into a machine started with <paramref name="options"/> (its drives'
    /// files aside: only their number, node names and formats count), as canonical JSON.
    /// </summary>
    internal static async Task<JsonObject> DescribeAsync(GuestImage image, MachineOptions options, AcceleratorChoice accel, CancellationToken cancellationToken)
    {
        return new JsonObject
        {
            ["format"] = Format,
            ["base_sha256"] = await ChecksumAsync(image.BaseImage, cancellationToken).ConfigureAwait(false),
            ["kernel_sha256"] = options.Kernel is null ? null : await ChecksumAsync(options.Kernel, cancellationToken).ConfigureAwait(false),
            ["initrd_sha256"] = options.Initrd is null ? null : await ChecksumAsync(options.Initrd, cancellationToken).ConfigureAwait(false),
            ["append"] = options.KernelCommandLine,
            ["qemu"] = await QemuVersionAsync(cancellationToken).ConfigureAwait(false),
            ["machine"] = "q35",
            ["memory_mib"] = options.MemoryMiB,
            ["cpus"] = options.Cpus,
            ["accel"] = accel.Name,
            // The host's CPU counts only under KVM (-cpu host): /proc/cpuinfo is read only then.
            ["cpu"] = CpuOf(accel, accel.IsKvm && File.Exists("/proc/cpuinfo") ? await File.ReadAllTextAsync("/proc/cpuinfo", cancellationToken).ConfigureAwait(false) : ""),
            ["agent"] = options.GuestAgent,
            ["network"] = options.Network,
            ["drives"] = new JsonArray([.. await Task.WhenAll(options.Drives.Select(async (d, i) => (JsonNode)(i == 0
                ? $"{d.NodeName}:{d.Format}:{(d.ReadOnly ? "ro" : "rw")}"
                // A data disk: its virtual size too (the guest saw a blank disk of that size).
                : $"{d.NodeName}:{d.Format}:{(d.ReadOnly ? "ro" : "rw")}:{(await QemuImg.Local.InfoAsync(d.File, format: d.Format, cancellationToken: cancellationToken).ConfigureAwait(false)).VirtualSize}"))).ConfigureAwait(false)]),
            ["extra"] = new JsonArray([.. options.ExtraArguments.Select(a => (JsonNode)a)]),
        };
    }

    /// <summary>
    /// The CPU the guest saw when its state was saved: the accelerator's arguments (<c>-cpu max</c> under TCG, whose
    /// features come with QEMU's version, also in the key) and, with <c>-cpu host</c> under KVM, the host's CPU model
    /// and a digest of its feature flags from <paramref name="cpuinfo"/> (<c>/proc/cpuinfo</c>). A state saved with
    /// one CPU model loads into a machine with another (the guest keeps the features it found at boot), and its cold
    /// boot under the other model would then save over it.
    /// </summary>
    internal static string CpuOf(AcceleratorChoice accel, string cpuinfo)
    {
        var arguments = string.Join(' ', accel.QemuArguments);
        if (!accel.IsKvm)
        {
            return arguments;
        }
        string? Field(string name) => cpuinfo.Split('\n').Select(l => l.Split(':', 2)).FirstOrDefault(p => p.Length == 2 && p[0].Trim() == name)?[1].Trim();
        var flags = string.Join(' ', (Field("flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(flags)))[..16];
        return $"{arguments}; host {Field("model name") ?? "unknown CPU"}, flags {digest}";
    }

    /// <summary>
    /// Why data disks keep a start cold, or null when each is blank: a new image with no backing file and no data
    /// (<c>qemu-img map</c>), as the data disk of the first start was when its state was saved. A restore over a disk
    /// that holds data the guest has not seen would be a corrupt guest.
    /// </summary>
    internal static async Task<string?> WhyNotEmptyAsync(IReadOnlyList<DriveSpec> drives, CancellationToken cancellationToken)
    {
        foreach (var d in drives)
        {
            if (d.ReadOnly)
            {
                return $"the extra drive {d.NodeName} is read-only (saved states cover blank data disks only)";
            }
            var info = await QemuImg.Local.InfoAsync(d.File, format: d.Format, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (info.BackingFilename is not null)
            {
                return $"the extra drive {d.NodeName} ({d.File}) has a backing file (saved states cover blank data disks only)";
            }
            var map = await QemuImg.Local.MapAsync(d.File, format: d.Format, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (map.BytesOfDataAtDepth(0) > 0)
            {
                return $"the extra drive {d.NodeName} ({d.File}) holds data (saved states cover blank data disks only)";
            }
        }
        return null;
    }

    /// <summary>The key's folder name: a hash of the description.</summary>
    internal static string KeyOf(JsonObject description) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(description.ToJsonString())))[..16];

    /// <summary>
    /// A file's SHA-256 (the base image, the kernel, the initramfs), computed once and kept in
    /// <c>states/checksums/</c> with the size and modification time it was computed for: a file that changes is
    /// hashed again, and a warm start does not read 600 MiB of base image each time.
    /// </summary>
    internal static async Task<string> ChecksumAsync(string file, CancellationToken cancellationToken)
    {
        var info = new FileInfo(file);
        var stamp = $"{info.Length} {info.LastWriteTimeUtc.Ticks}";
        var side = Path.Combine(LabPaths.CacheRoot, "states", "checksums", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(file))))[..16]);
        if (File.Exists(side) && (await File.ReadAllTextAsync(side, cancellationToken).ConfigureAwait(false)).Split('\n') is [var sha, var s, ..] && s == stamp)
        {
            return sha;
        }
        var hash = await FileHash.Sha256Async(file, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(Path.GetDirectoryName(side)!);
        await File.WriteAllTextAsync(side, $"{hash}\n{stamp}\n", cancellationToken).ConfigureAwait(false);
        return hash;
    }

    private static (string Stamp, string Version)? _qemuVersion;

    /// <summary>
    /// The first line of <c>qemu-system-x86_64 --version</c>, asked once per process and again only when the binary
    /// on the PATH changes (size, modification time).
    /// </summary>
    internal static async Task<string> QemuVersionAsync(CancellationToken cancellationToken)
    {
        var binary = ProcessRunner.Which("qemu-system-x86_64");
        var stamp = binary is null ? "" : $"{binary} {new FileInfo(binary).Length} {File.GetLastWriteTimeUtc(binary).Ticks}";
        if (_qemuVersion is { } known && known.Stamp == stamp)
        {
            return known.Version;
        }
        var qemu = await ProcessRunner.RunAsync("qemu-system-x86_64", ["--version"], new ProcessOptions { Timeout = TimeSpan.FromSeconds(30) }, cancellationToken).ConfigureAwait(false);
        var version = qemu.StandardOutput.Split('\n')[0].Trim();
        _qemuVersion = (stamp, version);
        return version;
    }

    /// <summary>A state's files.</summary>
    internal sealed record SavedState(string Folder)
    {
        public string StateFile => Path.Combine(Folder, "state.bin");
        public string RootLayer => Path.Combine(Folder, "root.qcow2");
        public string KeyFile => Path.Combine(Folder, "key.json");
    }

    /// <summary>The state saved for <paramref name="description"/>, or null and why not (one line).</summary>
    internal static async Task<(SavedState? State, string Why)> FindAsync(JsonObject description, CancellationToken cancellationToken)
    {
        var s = new SavedState(Path.Combine(Folder, KeyOf(description)));
        if (!File.Exists(s.KeyFile))
        {
            return (null, "no saved state for this configuration yet");
        }
        JsonObject? saved;
        try
        {
            saved = JsonNode.Parse(await File.ReadAllTextAsync(s.KeyFile, cancellationToken).ConfigureAwait(false)) as JsonObject;
        }
        catch (JsonException)
        {
            saved = null;
        }
        if (saved?["key"] is not JsonObject key || !JsonNode.DeepEquals(key, description))
        {
            return (null, $"the saved state {s.Folder} was made for another configuration or is unreadable");
        }
        if (!File.Exists(s.StateFile) || new FileInfo(s.StateFile).Length != saved["state_bytes"]?.GetValue<long>())
        {
            return (null, $"the saved state's file {s.StateFile} is missing or has another size than when it was saved");
        }
        if (!File.Exists(s.RootLayer) || !string.Equals(await FileHash.Sha256Async(s.RootLayer, cancellationToken).ConfigureAwait(false), saved["root_sha256"]?.GetValue<string>(), StringComparison.OrdinalIgnoreCase))
        {
            return (null, $"the saved state's disk layer {s.RootLayer} is missing or changed since the state was saved: restoring over another disk would corrupt the guest");
        }
        File.SetLastWriteTimeUtc(s.KeyFile, DateTime.UtcNow); // most recently used
        return (s, $"restored the state saved {saved["saved"]?.GetValue<string>()} ({s.Folder})");
    }

    /// <summary>
    /// Puts the saved disk layer in place of the run's fresh (empty) top overlay <paramref name="top"/>: a copy of the
    /// layer, its backing file set (header only) to what <paramref name="top"/> was over, which holds the same bytes
    /// as the state's base because every layer between is empty.
    /// </summary>
    internal static async Task PlaceLayerAsync(SavedState state, string top, string backing, string backingFormat, CancellationToken cancellationToken)
    {
        LabFiles.EnsureMayModify(top, $"put the saved state's disk layer in place of {top}");
        File.Delete(top);
        File.Copy(state.RootLayer, top);
        File.SetUnixFileMode(top, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        await QemuImg.Local.RebaseAsync(top, backing, new RebaseOptions { Unsafe = true, BackingFormat = backingFormat }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts a fresh empty overlay back where a failed warm start left its copy of the layer.</summary>
    internal static async Task ResetLayerAsync(string top, string backing, string backingFormat, CancellationToken cancellationToken)
    {
        File.Delete(top);
        await QemuImg.Local.CreateAsync(top, "qcow2", options: new CreateOptions { BackingFile = backing, BackingFormat = backingFormat }, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Saves the running machine's state for <paramref name="description"/>: <c>stop</c>, <c>migrate</c> to a file
    /// (QEMU flushes and releases its images when the migration completes), a copy of the root disk's top layer
    /// <paramref name="rootTop"/>, a check that the <paramref name="dataDrives"/> are still blank, then <c>cont</c>
    /// (QEMU takes its images back). Written to a temporary folder and
    /// renamed into place, so a reader never sees half a state; a state saved meanwhile by another run wins.
    /// Returns how long the guest was paused, and the state's folder.
    /// </summary>
    internal static async Task<(TimeSpan Paused, string Folder)> SaveAsync(QemuMachine machine, JsonObject description, string rootTop, IReadOnlyList<DriveSpec> dataDrives, CancellationToken cancellationToken)
    {
        var final = new SavedState(Path.Combine(Folder, KeyOf(description)));
        var temp = new SavedState(Path.Combine(Folder, $".saving-{Guid.NewGuid():N}"));
        Directory.CreateDirectory(temp.Folder);
        var entry = LabJournal.Current.Begin("qmp", $"save the guest's state for warm starts: stop; migrate exec:cat > {temp.StateFile}; copy {rootTop}; cont");
        var paused = Stopwatch.StartNew();
        try
        {
            using (var migration = machine.Qmp.Listen("MIGRATION"))
            {
                await Snapshots.SystemCheckpoints.EnableMigrationEventsAsync(machine.Qmp, cancellationToken).ConfigureAwait(false);
                await machine.Qmp.ExecuteAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
                try
                {
                    await machine.Qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = "exec:cat > " + ShellQuote.Quote(temp.StateFile) }, cancellationToken: cancellationToken).ConfigureAwait(false);
                    await Snapshots.SystemCheckpoints.WaitMigrationAsync(migration, TimeSpan.FromMinutes(5), "the state's migration to a file", cancellationToken).ConfigureAwait(false);
                    await Snapshots.SystemCheckpoints.WaitSourceSettledAsync(machine.Qmp, TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false);
                    File.Copy(rootTop, temp.RootLayer);
                    // The data disks must still be blank, as a restore will give them (the guest may have written one).
                    if (await WhyNotEmptyAsync(dataDrives, cancellationToken).ConfigureAwait(false) is { } written)
                    {
                        throw new LabException($"no state kept: {written} after the boot");
                    }
                }
                finally
                {
                    await machine.Qmp.ExecuteAsync("cont", cancellationToken: CancellationToken.None).ConfigureAwait(false);
                    paused.Stop();
                }
            }
            File.SetUnixFileMode(temp.RootLayer, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var record = new JsonObject
            {
                ["key"] = description.DeepClone(),
                ["state_bytes"] = new FileInfo(temp.StateFile).Length,
                ["root_sha256"] = await FileHash.Sha256Async(temp.RootLayer, cancellationToken).ConfigureAwait(false),
                ["saved"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture),
                ["paused_ms"] = Math.Round(paused.Elapsed.TotalMilliseconds),
            };
            await File.WriteAllTextAsync(temp.KeyFile, record.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);
            if (Directory.Exists(final.Folder))
            {
                // A stale or invalid one (FindAsync said why): moved aside first, so a run reading it keeps its open files.
                var aside = Path.Combine(Folder, $".old-{Guid.NewGuid():N}");
                Directory.Move(final.Folder, aside);
                LabPaths.TryDeleteFolder(aside);
            }
            try
            {
                Directory.Move(temp.Folder, final.Folder);
            }
            catch (IOException)
            {
                // Another run saved the same configuration meanwhile: keep its state.
            }
            entry.Complete($"paused {paused.Elapsed.TotalMilliseconds:0} ms, state {SizeText.Format(record["state_bytes"]!.GetValue<long>())}");
            Prune();
            return (paused.Elapsed, final.Folder);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
        finally
        {
            if (Directory.Exists(temp.Folder))
            {
                LabPaths.TryDeleteFolder(temp.Folder);
            }
        }
    }

    /// <summary>
    /// For <c>lab doctor</c>: whether the default embedded guest (as the notebooks start it, without data disks)
    /// will start warm, and if not, why, in one line.
    /// </summary>
    public static async Task<(bool Warm, string Why)> StatusAsync(GuestImage image, CancellationToken cancellationToken = default)
    {
        if (!EnabledByEnvironment)
        {
            return (false, "off (LAB_WARM=0): every start boots");
        }
        var options = EmbeddedGuest.MachineOptionsFor(image, new EmbeddedGuestOptions(), Path.Combine(Folder, "probe.qcow2"));
        var accel = await Accelerator.ChooseAsync(options.Kernel, cancellationToken).ConfigureAwait(false);
        var (state, why) = await FindAsync(await DescribeAsync(image, options with { Accelerator = accel }, accel, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return state is null
            ? (false, $"{why}: the next start of the default guest boots and saves one")
            : (true, $"a saved state for the default guest: {why.Replace("restored the state", "the state", StringComparison.Ordinal)}");
    }

    /// <summary>Deletes a state that failed to load (the next cold boot saves a new one).</summary>
    internal static void Discard(SavedState state) => LabPaths.TryDeleteFolder(state.Folder);

    /// <summary>Keeps the most recently used states only.</summary>
    private static void Prune()
    {
        var states = Directory.GetDirectories(Folder).Where(d => !Path.GetFileName(d).StartsWith('.')).Select(d => new SavedState(d)).Where(s => File.Exists(s.KeyFile))
            .OrderByDescending(s => File.GetLastWriteTimeUtc(s.KeyFile)).ToList();
        foreach (var old in states.Skip(Keep))
        {
            Discard(old);
        }
    }

    /// <summary>
    /// After a restore the guest must not be a copy of the last one: its clock is set from the host's
    /// (<c>guest-set-time</c>, or <c>date</c> when the guest has no hwclock for it), fresh host entropy is
    /// written into its input pool, and the kernel is made to reseed its generator from that pool at once
    /// (<c>RNDRESEEDCRNG</c>). Writing to <c>/dev/urandom</c> alone does not reseed: Linux 6.1 reseeds on a
    /// schedule measured in jiffies, which go on from the saved boot, so two restores read the same bytes unless
    /// the schedule happened to fall between save and read (CI saw it). The <c>vmgenid</c> device on the machine
    /// would reseed a kernel that has its driver; Debian's cloud kernel has none. Returns the guest's clock offset
    /// from the host's after setting it.
    /// </summary>
    /// <summary>
    /// The guest's kernel reseeds its generator from the input pool now: <c>ioctl(RNDRESEEDCRNG)</c>
    /// (<c>_IO('R', 7)</c>, root only) on <c>/dev/urandom</c>. Perl because the guest has it and no compiler; a
    /// failure exits non-zero with the reason, which fails the warm start.
    /// </summary>
    internal const string ReseedScript = "open(my $f, '<', '/dev/urandom') or die \"open /dev/urandom: $!\\n\"; ioctl($f, 0x5207, 0) or die \"RNDRESEEDCRNG: $!\\n\";";

    internal static async Task<TimeSpan> RefreshAsync(IGuestAgent agent, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var ns = now.ToUnixTimeMilliseconds() * 1_000_000L;
        try
        {
            await agent.ExecuteAsync("guest-set-time", new JsonObject { ["time"] = ns }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (GuestAgentErrorException)
        {
            var t = DateTimeOffset.UtcNow;
            await agent.OutputAsync(["date", "-u", "-s", "@" + (t.ToUnixTimeMilliseconds() / 1000.0).ToString("0.000", CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
        await agent.WriteFileAsync("/dev/urandom", RandomNumberGenerator.GetBytes(512), cancellationToken).ConfigureAwait(false);
        await agent.OutputAsync(["perl", "-e", ReseedScript], TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        var guestNow = double.Parse((await agent.OutputAsync(["date", "+%s.%N"], TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(guestNow - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
    }
}
