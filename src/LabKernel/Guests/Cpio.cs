using System.Globalization;
using System.Text;

namespace LabKernel.Guests;

/// <summary>Writes a cpio archive in the "newc" format the Linux kernel unpacks as an initramfs.</summary>
internal sealed class CpioWriter : IDisposable
{
    private readonly Stream _out;
    private int _inode = 1;

    public CpioWriter(Stream output) => _out = output;

    public void Directory(string name) => Entry(name, 0x4000 | 0x1ED, [], 0, 0);

    public void File(string name, byte[] content, int permissions = 0x1A4) => Entry(name, 0x8000 | permissions, content, 0, 0);

    public void CharDevice(string name, int major, int minor, int permissions = 0x180) => Entry(name, 0x2000 | permissions, [], major, minor);

    public void Dispose()
    {
        Entry("TRAILER!!!", 0, [], 0, 0);
        _out.Flush();
    }

    private void Entry(string name, int mode, byte[] data, int rdevMajor, int rdevMinor)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var header = new StringBuilder("070701");
        foreach (var field in new[] { _inode++, mode, 0, 0, (mode & 0x4000) != 0 ? 2 : 1, 0, data.Length, 0, 0, rdevMajor, rdevMinor, nameBytes.Length, 0 })
        {
            header.Append(field.ToString("X8", CultureInfo.InvariantCulture));
        }
        var h = Encoding.ASCII.GetBytes(header.ToString());
        _out.Write(h);
        _out.Write(nameBytes);
        Pad(h.Length + nameBytes.Length);
        _out.Write(data);
        Pad(data.Length);
    }

    private void Pad(int length)
    {
        var pad = (4 - length % 4) % 4;
        for (var i = 0; i < pad; i++)
        {
            _out.WriteByte(0);
        }
    }
}

/// <summary>Builds the lean profile's initramfs from the guest's own busybox and virtio modules.</summary>
internal static class LeanInitramfs
{
    /// <summary>The modules the root disk needs, in load order.</summary>
    internal static readonly string[] Modules = ["virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"];

    public static void Build(string rootfs, string output)
    {
        var busybox = Path.Combine(rootfs, "bin/busybox");
        if (!System.IO.File.Exists(busybox))
        {
            throw new LabException("the guest root filesystem has no /bin/busybox (package busybox-static) for the lean initramfs");
        }
        var modulesRoot = System.IO.Directory.GetDirectories(Path.Combine(rootfs, "lib/modules")).Single();
        var all = System.IO.Directory.GetFiles(modulesRoot, "*.ko", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetFileNameWithoutExtension(p), StringComparer.Ordinal);
        using var fs = System.IO.File.Create(output);
        using var cpio = new CpioWriter(fs);
        foreach (var d in new[] { "bin", "dev", "proc", "sys", "root", "modules" })
        {
            cpio.Directory(d);
        }
        cpio.CharDevice("dev/console", 5, 1);
        cpio.File("bin/busybox", System.IO.File.ReadAllBytes(busybox), 0x1ED);
        cpio.File("init", Encoding.UTF8.GetBytes(GuestResources.Read("lab-initramfs-init")), 0x1ED);
        foreach (var m in Modules)
        {
            if (!all.TryGetValue(m, out var path))
            {
                throw new LabException($"kernel module {m}.ko not found under {modulesRoot}");
            }
            cpio.File($"modules/{m}.ko", System.IO.File.ReadAllBytes(path));
        }
        cpio.File("modules.order", Encoding.UTF8.GetBytes(string.Join('\n', Modules) + "\n"));
    }
}
