using System.Diagnostics;
using System.Text.Json;
using LabKernel.Host;
using LabKernel.Processes;

namespace LabKernel.Machines;

/// <summary>The accelerator QEMU will use and why it was chosen.</summary>
/// <param name="Name"><c>kvm</c> or <c>tcg</c>.</param>
/// <param name="Reason">One line a user can read, e.g. "PVM host detected: stock kernels hang under KVM".</param>
public sealed record AcceleratorChoice(string Name, string Reason)
{
    public bool IsKvm => Name == "kvm";

    /// <summary>QEMU arguments: <c>-accel kvm -cpu host</c> or <c>-accel tcg -cpu max</c>.</summary>
    public IReadOnlyList<string> QemuArguments => IsKvm ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"];
}

/// <summary>
/// Picks KVM only where a probe guest really boots under it, TCG otherwise. <c>LAB_ACCEL=tcg|kvm</c> overrides.
/// PVM hosts (<c>/sys/module/kvm_pvm</c>) expose a working /dev/kvm on which stock kernels hang, so they get TCG.
/// The probe's verdict is cached per QEMU binary and kernel.
/// </summary>
public static class Accelerator
{
    private static AcceleratorChoice? _cached;

    public static async Task<AcceleratorChoice> ChooseAsync(string? probeKernel = null, CancellationToken cancellationToken = default)
    {
        if (_cached is not null)
        {
            return _cached;
        }
        var choice = await DecideAsync(probeKernel, cancellationToken).ConfigureAwait(false);
        _cached = choice;
        return choice;
    }

    /// <summary>
    /// The accelerator for a domain the lab makes on <paramref name="host"/>: <see cref="ChooseAsync"/> for this machine;
    /// for another, KVM where it has a <c>/dev/kvm</c> and is no PVM host, TCG otherwise (no probe boot there;
    /// <c>LAB_ACCEL</c> overrides as here). Whether the SSH user may open <c>/dev/kvm</c> says nothing of libvirt's QEMU,
    /// which opens it, so only its presence is asked; a domain KVM cannot start fails with libvirt's own error.
    /// </summary>
    public static async Task<AcceleratorChoice> ChooseOnAsync(Host.ILabHost host, string? probeKernel = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host.IsLocal)
        {
            return await ChooseAsync(probeKernel, cancellationToken).ConfigureAwait(false);
        }
        if (Environment.GetEnvironmentVariable("LAB_ACCEL") is { Length: > 0 })
        {
            return await DecideAsync(null, cancellationToken).ConfigureAwait(false);
        }
        var r = await host.RunAsync("sh", ["-c", "if [ -d /sys/module/kvm_pvm ]; then echo pvm; elif [ -c /dev/kvm ]; then echo kvm; else echo none; fi"],
            cancellationToken: cancellationToken).ConfigureAwait(false);
        return r.StandardOutput.Trim() switch
        {
            "kvm" => new AcceleratorChoice("kvm", $"/dev/kvm on {host.Name}"),
            "pvm" => new AcceleratorChoice("tcg", $"PVM host detected on {host.Name} (/sys/module/kvm_pvm): stock kernels hang under KVM there, so TCG"),
            _ => new AcceleratorChoice("tcg", $"no /dev/kvm on {host.Name}: software emulation"),
        };
    }

    private static async Task<AcceleratorChoice> DecideAsync(string? probeKernel, CancellationToken cancellationToken)
    {
        var env = Environment.GetEnvironmentVariable("LAB_ACCEL");
        if (!string.IsNullOrEmpty(env))
        {
            return env.ToLowerInvariant() switch
            {
                "kvm" => new AcceleratorChoice("kvm", "LAB_ACCEL=kvm"),
                "tcg" => new AcceleratorChoice("tcg", "LAB_ACCEL=tcg"),
                _ => throw new LabUsageException($"LAB_ACCEL must be kvm or tcg, not '{env}'"),
            };
        }
        if (!File.Exists("/dev/kvm"))
        {
            return new AcceleratorChoice("tcg", "no /dev/kvm: software emulation");
        }
        try
        {
            using var _ = File.Open("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new AcceleratorChoice("tcg", $"/dev/kvm cannot be opened ({e.Message}): software emulation");
        }
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            return new AcceleratorChoice("tcg", "PVM host detected (/sys/module/kvm_pvm): stock kernels hang under KVM here, so TCG");
        }
        if (probeKernel is null || !File.Exists(probeKernel))
        {
            return new AcceleratorChoice("tcg", "/dev/kvm opens but no kernel to probe it with yet: TCG until a probe boots");
        }
        var key = $"{new FileInfo(probeKernel).Length}-{File.GetLastWriteTimeUtc(probeKernel).Ticks}-{ProcessRunner.Which("qemu-system-x86_64")}";
        var cacheFile = Path.Combine(LabPaths.CacheRoot, "accel-probe.json");
        try
        {
            if (File.Exists(cacheFile) && JsonSerializer.Deserialize<ProbeRecord>(await File.ReadAllTextAsync(cacheFile, cancellationToken).ConfigureAwait(false)) is { } rec && rec.Key == key)
            {
                return new AcceleratorChoice(rec.Name, rec.Reason + " (cached probe)");
            }
        }
        catch (JsonException)
        {
        }
        var result = await ProbeKvmAsync(probeKernel, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(LabPaths.CacheRoot);
        await File.WriteAllTextAsync(cacheFile, JsonSerializer.Serialize(new ProbeRecord(key, result.Name, result.Reason)), cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Boots the kernel under KVM with no root filesystem: reaching the root-mount panic proves KVM runs it.</summary>
    internal static async Task<AcceleratorChoice> ProbeKvmAsync(string kernel, CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromSeconds(20);
        var sw = Stopwatch.StartNew();
        var seen = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = ProcessRunner.RunAsync("qemu-system-x86_64",
            ["-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
             "-serial", "stdio", "-kernel", kernel, "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"],
            new ProcessOptions
            {
                Timeout = limit,
                Check = false,
                OnOutputLine = line =>
                {
                    if (line.Contains("Kernel panic", StringComparison.Ordinal) || line.Contains("VFS:", StringComparison.Ordinal))
                    {
                        seen.TrySetResult(true);
                    }
                },
            }, cts.Token);
        try
        {
            var done = await Task.WhenAny(seen.Task, run).ConfigureAwait(false);
            if (done == seen.Task)
            {
                await cts.CancelAsync().ConfigureAwait(false);
                return new AcceleratorChoice("kvm", $"a probe kernel booted under KVM in {sw.Elapsed.TotalSeconds:0.0} s");
            }
            var r = await run.ConfigureAwait(false);
            return new AcceleratorChoice("tcg", $"probe kernel did not boot under KVM (exit {r.ExitCode}): TCG");
        }
        catch (LabTimeoutException)
        {
            return new AcceleratorChoice("tcg", $"probe kernel hung under KVM for {limit.TotalSeconds:0} s: TCG");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new AcceleratorChoice("kvm", $"a probe kernel booted under KVM in {sw.Elapsed.TotalSeconds:0.0} s");
        }
    }

    private sealed record ProbeRecord(string Key, string Name, string Reason);
}
