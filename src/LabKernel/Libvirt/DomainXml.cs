using System.Globalization;
using System.Xml.Linq;

using LabKernel.Machines;

namespace LabKernel.Libvirt;

/// <summary>One disk of a domain as its XML describes it.</summary>
/// <param name="Target">The target device name (<c>vda</c>): how libvirt's block APIs name the disk.</param>
/// <param name="Bus">virtio, sata, ...</param>
/// <param name="Format">The active layer's format (<c>driver type</c>).</param>
/// <param name="Chain">Files from the active layer (first) down to the base, from <c>source</c> and nested <c>backingStore</c>.</param>
public sealed record DomainDisk(string Target, string Bus, string Format, IReadOnlyList<string> Chain)
{
    /// <summary>Format of each layer in <see cref="Chain"/> (from <c>driver</c> and each <c>backingStore/format</c>); empty when unknown.</summary>
    public IReadOnlyList<string> Formats { get; init; } = [];

    /// <summary>
    /// The disk is attached read-only (<c>&lt;readonly/&gt;</c>): neither QEMU nor libvirt writes it, and libvirt's
    /// snapshots leave it out.
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>The disk's <c>type</c>: <c>file</c>, <c>block</c>, <c>network</c>, <c>volume</c>, ...</summary>
    public string SourceType { get; init; } = "file";

    /// <summary>libvirt's <c>index</c> of each layer (<c>vda[2]</c> names layer 2 in block-job calls); null when the XML has none.</summary>
    public IReadOnlyList<int?> Indexes { get; init; } = [];

    /// <summary>
    /// The same chain in the backend-neutral form: one <see cref="Block.LiveLayer"/> per layer, named
    /// <c>vda[index]</c> as libvirt addresses layers (the active one just <c>vda</c> when it has no index).
    /// </summary>
    public Block.LiveChain ToLiveChain()
    {
        var layers = new List<Block.LiveLayer>();
        for (var i = 0; i < Chain.Count; i++)
        {
            var index = i < Indexes.Count ? Indexes[i] : null;
            var name = index is null ? (i == 0 ? Target : $"{Target} layer {i}") : $"{Target}[{index}]";
            var format = i < Formats.Count && Formats[i].Length > 0 ? Formats[i] : (i == 0 ? Format : "");
            layers.Add(new Block.LiveLayer(name, Chain[i], format, i + 1 < Chain.Count ? Chain[i + 1] : null));
        }
        return new Block.LiveChain(Target, Target, layers);
    }

    /// <summary>The active layer (<c>source file</c>).</summary>
    public string Source => Chain.Count > 0 ? Chain[0] : "";

    /// <summary><c>base.qcow2 &lt;- overlay1.qcow2 (active)</c>, the same form as the image chain's text.</summary>
    public string ToText() => string.Join(" <- ", Chain.Reverse().Select(Path.GetFileName)) + " (active)";

    public override string ToString() => $"{Target}: {ToText()}";
}

/// <summary>A disk for the generated domain.</summary>
/// <param name="File">The image the domain opens (its backing chain comes from the image headers).</param>
/// <param name="Target">Target device, vda, vdb, ...</param>
/// <param name="Format">qcow2 or raw.</param>
public sealed record DomainDiskSpec(string File, string Target = "vda", string Format = "qcow2");

/// <summary>Guest networking for the generated domain.</summary>
public enum DomainNetwork
{
    /// <summary>No network interface (the lab reaches the guest through the agent).</summary>
    None,

    /// <summary>A QEMU user-mode (slirp) interface.</summary>
    User,
}

/// <summary>
/// The XML of a direct-kernel-boot domain like the lab's embedded guest: <c>type='qemu'</c> (TCG) or <c>'kvm'</c>,
/// kernel + initrd + command line, virtio disks, a guest-agent channel (unix socket, path chosen by libvirt),
/// the serial console to a log file, and no devices the lab does not use.
/// </summary>
public sealed record DomainSpec
{
    public required string Name { get; init; }

    /// <summary><c>qemu</c> for TCG, <c>kvm</c> for hardware virtualization.</summary>
    public string Type { get; init; } = "qemu";

    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;
    public int Cpus { get; init; } = GuestDefaults.Cpus;
    public required string Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? KernelCommandLine { get; init; }
    public IReadOnlyList<DomainDiskSpec> Disks { get; init; } = [];

    /// <summary>File the serial console is written to; null for none.</summary>
    public string? SerialLog { get; init; }

    public bool AgentChannel { get; init; } = true;
    public DomainNetwork Network { get; init; } = DomainNetwork.None;

    /// <summary>
    /// Run this domain's QEMU as root (a per-domain static DAC label, no relabelling). The lab's cached images
    /// live under /root, which Debian's default <c>libvirt-qemu</c> user cannot reach; this avoids changing
    /// libvirt's global qemu.conf.
    /// </summary>
    public bool RunAsRoot { get; init; } = true;

    public string Emulator { get; init; } = "/usr/bin/qemu-system-x86_64";

    /// <summary>Empty <c>pcie-root-port</c> controllers left free after the domain's own devices: slots a device can be hot-plugged into.</summary>
    public int HotPlugSlots { get; init; }

    public string ToXml()
    {
        var os = new XElement("os", new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "q35"), "hvm"),
            new XElement("kernel", Kernel));
        if (Initrd is not null)
        {
            os.Add(new XElement("initrd", Initrd));
        }
        if (KernelCommandLine is not null)
        {
            os.Add(new XElement("cmdline", KernelCommandLine));
        }
        var devices = new XElement("devices", new XElement("emulator", Emulator));
        foreach (var d in Disks)
        {
            devices.Add(DiskElement(d.File, d.Target, d.Format));
        }
        if (AgentChannel)
        {
            devices.Add(new XElement("channel", new XAttribute("type", "unix"),
                new XElement("source", new XAttribute("mode", "bind")),
                new XElement("target", new XAttribute("type", "virtio"), new XAttribute("name", "org.qemu.guest_agent.0"))));
        }
        if (SerialLog is not null)
        {
            devices.Add(new XElement("serial", new XAttribute("type", "file"),
                new XElement("source", new XAttribute("path", SerialLog)),
                new XElement("target", new XAttribute("port", "0"))));
        }
        if (Network == DomainNetwork.User)
        {
            devices.Add(new XElement("interface", new XAttribute("type", "user"), new XElement("model", new XAttribute("type", "virtio"))));
        }
        if (HotPlugSlots > 0)
        {
            // Once root ports are listed, libvirt puts the domain's own PCIe devices on them first (each disk, the
            // agent's virtio-serial, the network card, the USB controller) and adds none spare: list enough for
            // those and HotPlugSlots more. Unused ports cost nothing; virt-install lists 14.
            devices.Add(new XElement("controller", new XAttribute("type", "pci"), new XAttribute("index", "0"), new XAttribute("model", "pcie-root")));
            for (var i = 0; i < Disks.Count + 4 + HotPlugSlots; i++)
            {
                devices.Add(new XElement("controller", new XAttribute("type", "pci"), new XAttribute("model", "pcie-root-port")));
            }
        }
        devices.Add(new XElement("memballoon", new XAttribute("model", "none")));
        var cpu = Type == "kvm"
            ? new XElement("cpu", new XAttribute("mode", "host-passthrough"))
            : new XElement("cpu", new XAttribute("mode", "maximum"), new XAttribute("migratable", "off"));
        var domain = new XElement("domain", new XAttribute("type", Type),
            new XElement("name", Name),
            new XElement("memory", new XAttribute("unit", "MiB"), MemoryMiB.ToString(CultureInfo.InvariantCulture)),
            new XElement("vcpu", Cpus.ToString(CultureInfo.InvariantCulture)),
            os,
            new XElement("features", new XElement("acpi")),
            cpu,
            new XElement("on_poweroff", "destroy"),
            // A reboot inside the guest resets it on the same disks, as on real hosts (the documents reboot guests).
            new XElement("on_reboot", "restart"),
            new XElement("on_crash", "destroy"),
            devices);
        if (RunAsRoot)
        {
            domain.Add(new XElement("seclabel", new XAttribute("type", "static"), new XAttribute("model", "dac"), new XAttribute("relabel", "no"),
                new XElement("label", "+0:+0")));
        }
        return domain.ToString();
    }

    internal static XElement DiskElement(string file, string target, string format, string? serial = null)
    {
        var disk = new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", format)),
            new XElement("source", new XAttribute("file", file)),
            new XElement("target", new XAttribute("dev", target), new XAttribute("bus", "virtio")));
        if (serial is not null)
        {
            // virtio-blk shows it to the guest in /sys/block/vdX/serial: how the lab finds a hot-plugged disk there.
            disk.Add(new XElement("serial", serial));
        }
        return disk;
    }
}

/// <summary>Reads what the lab needs from domain XML.</summary>
public static class DomainXml
{
    /// <summary>The domain's name.</summary>
    public static string NameOf(string xml) =>
        XDocument.Parse(xml).Root?.Element("name")?.Value ?? throw new LabUsageException("domain XML has no <name>");

    /// <summary>
    /// From a live XML: libvirt's state of the guest agent's channel (<c>connected</c>/<c>disconnected</c>, "present" if
    /// libvirt records none) or null without one, and the file of the first serial or console device of type file, if any.
    /// </summary>
    public static (string? AgentChannel, string? ConsoleFile) AgentChannelAndConsole(string xml)
    {
        var devices = XDocument.Parse(xml).Root?.Element("devices");
        var agent = devices?.Elements("channel").Select(c => c.Element("target"))
            .FirstOrDefault(t => (string?)t?.Attribute("name") == "org.qemu.guest_agent.0");
        var console = devices?.Elements().Where(e => e.Name.LocalName is "serial" or "console" && (string?)e.Attribute("type") == "file")
            .Select(e => (string?)e.Element("source")?.Attribute("path")).FirstOrDefault(p => !string.IsNullOrEmpty(p));
        return (agent is null ? null : (string?)agent.Attribute("state") ?? "present", console);
    }

    /// <summary>
    /// The disks (<c>device='disk'</c>) with their chains: <c>source file</c>, then each nested
    /// <c>backingStore/source file</c> (libvirt fills those in the live XML from the image headers).
    /// </summary>
    public static IReadOnlyList<DomainDisk> ParseDisks(string xml)
    {
        var root = XDocument.Parse(xml).Root ?? throw new FormatException("empty domain XML");
        var disks = new List<DomainDisk>();
        foreach (var d in root.Element("devices")?.Elements("disk") ?? [])
        {
            if ((string?)d.Attribute("device") is not (null or "disk"))
            {
                continue;
            }
            var target = (string?)d.Element("target")?.Attribute("dev") ?? "";
            var bus = (string?)d.Element("target")?.Attribute("bus") ?? "";
            var format = (string?)d.Element("driver")?.Attribute("type") ?? "";
            var chain = new List<string>();
            var formats = new List<string>();
            var indexes = new List<int?>();
            var src = SourceOf(d);
            if (src is not null)
            {
                chain.Add(src);
                formats.Add(format);
                indexes.Add(IndexOf(d.Element("source")));
            }
            var bs = d.Element("backingStore");
            while (bs is not null && SourceOf(bs) is { } f)
            {
                chain.Add(f);
                formats.Add((string?)bs.Element("format")?.Attribute("type") ?? "");
                indexes.Add(IndexOf(bs));
                bs = bs.Element("backingStore");
            }
            disks.Add(new DomainDisk(target, bus, format, chain)
            {
                Formats = formats,
                Indexes = indexes,
                ReadOnly = d.Element("readonly") is not null,
                SourceType = (string?)d.Attribute("type") ?? "file",
            });
        }
        return disks;
    }

    /// <summary>Each disk's target and its device alias (<c>vda</c> to <c>virtio-disk0</c>), the qdev id QEMU knows it by.</summary>
    public static IReadOnlyDictionary<string, string> DiskAliases(string xml)
    {
        var root = XDocument.Parse(xml).Root ?? throw new FormatException("empty domain XML");
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in root.Element("devices")?.Elements("disk") ?? [])
        {
            var target = (string?)d.Element("target")?.Attribute("dev");
            var alias = (string?)d.Element("alias")?.Attribute("name");
            if (target is not null && alias is not null)
            {
                map[target] = alias;
            }
        }
        return map;
    }

    private static int? IndexOf(XElement? e) =>
        int.TryParse((string?)e?.Attribute("index"), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var i) ? i : null;

    private static string? SourceOf(XElement e) =>
        (string?)e.Element("source")?.Attribute("file") ?? (string?)e.Element("source")?.Attribute("dev");

    /// <summary>
    /// Returns <paramref name="xml"/> with disk <paramref name="target"/>'s source set to <paramref name="file"/> and
    /// its <c>backingStore</c> removed (libvirt reads the chain from the image headers again).
    /// </summary>
    public static string WithDiskSource(string xml, string target, string file, string? format = null)
    {
        var doc = XDocument.Parse(xml);
        var disk = doc.Root?.Element("devices")?.Elements("disk").FirstOrDefault(d => (string?)d.Element("target")?.Attribute("dev") == target)
            ?? throw new LabUsageException($"the domain has no disk {target}");
        disk.Element("source")?.SetAttributeValue("file", file);
        if (format is not null)
        {
            disk.Element("driver")?.SetAttributeValue("type", format);
        }
        disk.Element("source")?.SetAttributeValue("index", null);
        disk.Elements("backingStore").Remove();
        return doc.ToString();
    }

    /// <summary>
    /// <see cref="WithDiskSource"/> for several disks in one definition: each (target, file, format) in turn.
    /// </summary>
    public static string WithDiskSources(string xml, IEnumerable<(string Target, string File, string? Format)> disks)
    {
        ArgumentNullException.ThrowIfNull(disks);
        foreach (var (target, file, format) in disks)
        {
            xml = WithDiskSource(xml, target, file, format);
        }
        return xml;
    }

    /// <summary>The <c>&lt;disk&gt;</c> element of disk <paramref name="target"/>, for detach.</summary>
    public static string DiskElementOf(string xml, string target) =>
        (XDocument.Parse(xml).Root?.Element("devices")?.Elements("disk").FirstOrDefault(d => (string?)d.Element("target")?.Attribute("dev") == target)
            ?? throw new LabUsageException($"the domain has no disk {target}")).ToString();
}
