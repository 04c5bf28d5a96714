using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace LabKernel.Guests;

/// <summary>How the embedded guest starts.</summary>
public enum GuestProfile
{
    /// <summary>A shell PID 1 that starts qemu-guest-agent and sshd only: the agent answers in seconds under TCG.</summary>
    Lean,

    /// <summary>The image's systemd, as a real Debian guest boots (about 27 s to the agent under TCG).</summary>
    Systemd,
}

/// <summary>What goes into the embedded guest image; its hash names the cache entry.</summary>
public sealed record GuestRecipe
{
    public string Suite { get; init; } = "bookworm";
    public string Variant { get; init; } = "minbase";

    public IReadOnlyList<string> Packages { get; init; } =
        ["linux-image-cloud-amd64", "qemu-guest-agent", "fio", "systemd-sysv", "udev", "e2fsprogs", "openssh-server", "iproute2", "procps", "gawk", "busybox-static"];

    /// <summary>Virtual size of the root disk.</summary>
    public long DiskBytes { get; init; } = 8L << 30;

    /// <summary>Bumped when the build steps change in a way the other fields do not show (4: the image is slimmed, <see cref="GuestImageBuilder.SlimmedFolders"/>).</summary>
    public int Revision { get; init; } = 4;

    /// <summary>A short hash over the recipe and the guest-side scripts it installs.</summary>
    public string Hash()
    {
        var text = new StringBuilder(JsonSerializer.Serialize(this));
        foreach (var (name, content) in GuestResources.All())
        {
            text.Append('\n').Append(name).Append('\n').Append(content);
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..12];
    }
}

/// <summary>A built, cached guest image: a read-only base qcow2, the kernel and initrd for direct boot, and SSH keys.</summary>
public sealed record GuestImage(string Directory, string RecipeHash)
{
    /// <summary>The root filesystem as qcow2. Never written: machines run on overlays of it.</summary>
    public string BaseImage => Path.Combine(Directory, "base.qcow2");

    public string Kernel => Path.Combine(Directory, "vmlinuz");

    /// <summary>Debian's generic initramfs (the systemd profile boots with it).</summary>
    public string Initrd => Path.Combine(Directory, "initrd.img");

    /// <summary>The lab's own small initramfs: virtio modules and busybox only (the lean profile).</summary>
    public string LeanInitrd => Path.Combine(Directory, "initrd-lean.img");

    /// <summary>The initramfs a profile boots with.</summary>
    public string InitrdFor(GuestProfile profile) => profile == GuestProfile.Lean ? LeanInitrd : Initrd;

    /// <summary>The private key authorized for root in the guest.</summary>
    public string SshPrivateKey => Path.Combine(Directory, "id_ed25519");

    /// <summary>A known_hosts file pinning the guest's host key (for any host name, since the port varies).</summary>
    public string SshKnownHosts => Path.Combine(Directory, "known_hosts");

    /// <summary>The kernel command line for a profile (root on the first virtio disk, console on the serial port).</summary>
    /// <remarks>
    /// <c>no_timer_check</c>: at boot Linux checks that the timer interrupt ticks through the IO-APIC within a short
    /// busy-wait. Under TCG on a saturated host the vCPU may not see the ticks in time, and the kernel panics ("IO-APIC +
    /// timer doesn't work!", on the console of a domain whose agent then never connected, in a four-lane suite run).
    /// The switch skips that check, as cloud images for VMs do; the timer itself works.
    /// </remarks>
    public static string KernelCommandLine(GuestProfile profile, string rootDevice = "/dev/vda") => profile switch
    {
        GuestProfile.Lean => $"root={rootDevice} rw console=ttyS0 quiet no_timer_check init=/usr/local/lib/lab/init",
        _ => $"root={rootDevice} rw console=ttyS0 quiet no_timer_check",
    };

    internal static bool IsComplete(string dir) =>
        new[] { "base.qcow2", "vmlinuz", "initrd.img", "initrd-lean.img", "id_ed25519", "known_hosts", "recipe.json" }.All(f => File.Exists(Path.Combine(dir, f)));
}

/// <summary>The guest-side files the image installs, embedded in LabKernel.</summary>
internal static class GuestResources
{
    public static IEnumerable<(string Name, string Content)> All() =>
        new[] { "lab-init", "lab-poweroff", "lab-shutdown", "lab.network", "lab-initramfs-init" }.Select(n => (n, Read(n)));

    public static string Read(string name)
    {
        var asm = typeof(GuestResources).Assembly;
        var resource = asm.GetManifestResourceNames().Single(r => r.EndsWith("." + name, StringComparison.Ordinal));
        using var s = asm.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(s);
        return reader.ReadToEnd().Replace("\r\n", "\n");
    }
}
