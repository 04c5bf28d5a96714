using System.Xml.Linq;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Libvirt;

public sealed class DomainXmlTests
{
    // Trimmed from `virsh dumpxml` of a running domain after one disk-only snapshot (libvirt 9.0).
    private const string LiveXml = """
        <domain type='qemu' id='7'>
          <name>labvirt-x</name>
          <devices>
            <emulator>/usr/bin/qemu-system-x86_64</emulator>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/tmp/w/overlay2.qcow2' index='3'/>
              <backingStore type='file' index='1'>
                <format type='qcow2'/>
                <source file='/tmp/w/overlay1.qcow2'/>
                <backingStore type='file' index='2'>
                  <format type='qcow2'/>
                  <source file='/cache/base.qcow2'/>
                  <backingStore/>
                </backingStore>
              </backingStore>
              <target dev='vda' bus='virtio'/>
              <alias name='virtio-disk0'/>
            </disk>
            <disk type='file' device='cdrom'>
              <target dev='sda' bus='sata'/>
            </disk>
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/>
              <source file='/tmp/w/data.raw'/>
              <backingStore/>
              <target dev='vdb' bus='virtio'/>
            </disk>
          </devices>
        </domain>
        """;

    [Fact]
    public void Disks_are_read_with_their_chain_from_source_and_nested_backingStore()
    {
        var disks = DomainXml.ParseDisks(LiveXml);

        Assert.Equal(["vda", "vdb"], disks.Select(d => d.Target));
        Assert.Equal(["/tmp/w/overlay2.qcow2", "/tmp/w/overlay1.qcow2", "/cache/base.qcow2"], disks[0].Chain);
        Assert.Equal("base.qcow2 <- overlay1.qcow2 <- overlay2.qcow2 (active)", disks[0].ToText());
        Assert.Equal("qcow2", disks[0].Format);
        Assert.Equal(["/tmp/w/data.raw"], disks[1].Chain);
    }

    [Fact]
    public void A_disks_chain_becomes_the_backend_neutral_live_chain_with_libvirts_layer_names_and_formats()
    {
        var disks = DomainXml.ParseDisks(LiveXml);
        var chain = disks[0].ToLiveChain();

        Assert.Equal(("vda", "vda"), (chain.Disk, chain.Device));
        Assert.Equal(["vda[3]", "vda[1]", "vda[2]"], chain.Layers.Select(l => l.NodeName));
        Assert.Equal(disks[0].Chain, chain.Filenames);
        Assert.All(chain.Layers, l => Assert.Equal("qcow2", l.Format));
        Assert.Equal(["/tmp/w/overlay1.qcow2", "/cache/base.qcow2", null], chain.Layers.Select(l => l.BackingFilename));
        Assert.Equal(disks[0].ToText(), chain.ToText());
        var raw = disks[1].ToLiveChain();
        Assert.Equal(("vdb", "raw"), (raw.Active.NodeName, raw.Active.Format));
    }

    [Fact]
    public void Disk_targets_map_to_the_device_aliases_qemu_knows_them_by()
    {
        var aliases = DomainXml.DiskAliases(LiveXml);
        Assert.Equal("virtio-disk0", aliases["vda"]);
        Assert.False(aliases.ContainsKey("vdb"));
    }

    [Fact]
    public void Pointing_a_disk_at_an_overlay_can_change_its_format_and_back()
    {
        var xml = DomainXml.WithDiskSource(LiveXml, "vdb", "/tmp/w/lab-overlay.qcow2", "qcow2");
        var vdb = DomainXml.ParseDisks(xml).Single(d => d.Target == "vdb");
        Assert.Equal(("qcow2", "/tmp/w/lab-overlay.qcow2"), (vdb.Format, vdb.Source));
        var back = DomainXml.ParseDisks(DomainXml.WithDiskSource(xml, "vdb", "/tmp/w/data.raw", "raw")).Single(d => d.Target == "vdb");
        Assert.Equal(("raw", "/tmp/w/data.raw"), (back.Format, back.Source));
    }

    [Fact]
    public void Pointing_a_disk_at_another_file_drops_its_backingStore_and_index()
    {
        var xml = DomainXml.WithDiskSource(LiveXml, "vda", "/tmp/w/overlay1.qcow2");
        var vda = XDocument.Parse(xml).Root!.Element("devices")!.Elements("disk").First();

        Assert.Equal("/tmp/w/overlay1.qcow2", (string?)vda.Element("source")!.Attribute("file"));
        Assert.Null(vda.Element("source")!.Attribute("index"));
        Assert.Empty(vda.Elements("backingStore"));
        Assert.Equal(["/tmp/w/overlay1.qcow2"], DomainXml.ParseDisks(xml)[0].Chain);
        Assert.Throws<LabUsageException>(() => DomainXml.WithDiskSource(LiveXml, "vdz", "/x"));
    }

    [Fact]
    public void The_generated_domain_boots_the_kernel_directly_with_a_virtio_disk_agent_channel_and_serial_log()
    {
        var spec = new DomainSpec
        {
            Name = "g1",
            Kernel = "/img/vmlinuz",
            Initrd = "/img/initrd-lean.img",
            KernelCommandLine = "root=/dev/vda rw console=ttyS0",
            Disks = [new DomainDiskSpec("/w/overlay1.qcow2")],
            SerialLog = "/w/serial.log",
        };
        var root = XDocument.Parse(spec.ToXml()).Root!;

        Assert.Equal("qemu", (string?)root.Attribute("type"));
        Assert.Equal("g1", root.Element("name")!.Value);
        Assert.Equal("/img/vmlinuz", root.Element("os")!.Element("kernel")!.Value);
        Assert.Equal("/img/initrd-lean.img", root.Element("os")!.Element("initrd")!.Value);
        Assert.Equal("root=/dev/vda rw console=ttyS0", root.Element("os")!.Element("cmdline")!.Value);
        Assert.Equal("maximum", (string?)root.Element("cpu")!.Attribute("mode"));
        var devices = root.Element("devices")!;
        Assert.Equal("org.qemu.guest_agent.0", (string?)devices.Element("channel")!.Element("target")!.Attribute("name"));
        Assert.Equal("/w/serial.log", (string?)devices.Element("serial")!.Element("source")!.Attribute("path"));
        Assert.Null(devices.Element("interface"));
        Assert.Equal("+0:+0", root.Element("seclabel")!.Element("label")!.Value);
        var disk = DomainXml.ParseDisks(spec.ToXml()).Single();
        Assert.Equal(("vda", "virtio", "qcow2", "/w/overlay1.qcow2"), (disk.Target, disk.Bus, disk.Format, disk.Source));
    }

    [Fact]
    public void A_kvm_domain_passes_the_host_cpu_and_user_networking_adds_a_virtio_interface()
    {
        var root = XDocument.Parse(new DomainSpec { Name = "k", Type = "kvm", Kernel = "/k", Network = DomainNetwork.User }.ToXml()).Root!;

        Assert.Equal("kvm", (string?)root.Attribute("type"));
        Assert.Equal("host-passthrough", (string?)root.Element("cpu")!.Attribute("mode"));
        Assert.Equal("user", (string?)root.Element("devices")!.Element("interface")!.Attribute("type"));
    }

    [Fact]
    public void Given_hot_plug_slots_When_the_domain_is_generated_Then_it_has_root_ports_for_its_own_devices_and_that_many_more_and_none_by_default()
    {
        var none = XDocument.Parse(new DomainSpec { Name = "a", Kernel = "/k" }.ToXml()).Root!;
        var two = XDocument.Parse(new DomainSpec { Name = "b", Kernel = "/k", HotPlugSlots = 2, Disks = [new DomainDiskSpec("/w/a.qcow2"), new DomainDiskSpec("/w/b.qcow2", "vdb")] }.ToXml()).Root!;

        Assert.Empty(none.Element("devices")!.Elements("controller"));
        var controllers = two.Element("devices")!.Elements("controller").ToList();
        Assert.All(controllers, c => Assert.Equal("pci", (string?)c.Attribute("type")));
        // libvirt requires index 0 to be the root itself once any PCI controller is listed.
        Assert.Equal(("0", "pcie-root"), ((string?)controllers[0].Attribute("index"), (string?)controllers[0].Attribute("model")));
        // Two disks, the agent's virtio-serial, a network card and the USB controller take a port each; two stay free.
        Assert.Equal(2 + 4 + 2, controllers.Skip(1).Count(c => (string?)c.Attribute("model") == "pcie-root-port"));
    }

    [Fact]
    public void Given_a_serial_When_a_disk_element_is_made_Then_the_guest_can_find_the_disk_by_it()
    {
        var disk = DomainSpec.DiskElement("/w/data.qcow2", "vdc", "qcow2", "lab-data0");

        Assert.Equal("lab-data0", disk.Element("serial")!.Value);
        Assert.Null(DomainSpec.DiskElement("/w/data.qcow2", "vdc", "qcow2").Element("serial"));
    }
}

public sealed class SnapshotMetadataTests
{
    private const string DiskOnly = """
        <domainsnapshot>
          <name>snap</name>
          <state>disk-snapshot</state>
          <parent><name>first</name></parent>
          <creationTime>1700000000</creationTime>
          <memory snapshot='no'/>
          <disks>
            <disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/w/overlay2.qcow2'/></disk>
            <disk name='vdb' snapshot='no'/>
          </disks>
        </domainsnapshot>
        """;

    [Fact]
    public void Snapshot_XML_gives_parent_state_and_per_disk_files()
    {
        var s = LibvirtSnapshotInfo.Parse(DiskOnly);

        Assert.Equal(("snap", "first", "disk-snapshot", "no"), (s.Name, s.Parent, s.State, s.Memory));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), s.Created);
        Assert.True(s.IsExternal);
        Assert.Equal([new SnapshotDiskInfo("vda", "external", "/w/overlay2.qcow2"), new SnapshotDiskInfo("vdb", "no", null)], s.Disks);
    }

    [Fact]
    public void The_tree_nests_children_under_their_parent()
    {
        var t0 = DateTimeOffset.FromUnixTimeSeconds(1);
        var snaps = new[]
        {
            new LibvirtSnapshotInfo("a", null, "running", t0, "internal", null, []),
            new LibvirtSnapshotInfo("b", "a", "disk-snapshot", t0, "no", null, [new SnapshotDiskInfo("vda", "external", "/o2")]),
            new LibvirtSnapshotInfo("c", "a", "running", t0, "internal", null, []),
        };

        Assert.Equal("a (running, internal)\n  b (disk-snapshot, external)\n  c (running, internal)\n", LibvirtSnapshots.TreeText(snaps));
    }
}

public sealed class ChainRestoreTests
{
    [Fact]
    public void Layers_above_the_captured_chain_are_the_ones_to_remove()
    {
        Assert.Equal(["/w/o3", "/w/o2"], ChainRestore.LayersAbove(["/w/o3", "/w/o2", "/w/o1", "/b"], ["/w/o1", "/b"]));
        Assert.Empty(ChainRestore.LayersAbove(["/w/o1", "/b"], ["/w/o1", "/b"])!);
    }

    [Fact]
    public void A_chain_that_does_not_sit_on_the_captured_one_is_not_restorable()
    {
        // After a shallow copy + pivot the active layer changed without adding a layer above overlay1.
        Assert.Null(ChainRestore.LayersAbove(["/w/copy", "/b"], ["/w/o1", "/b"]));
        Assert.Null(ChainRestore.LayersAbove(["/b"], ["/w/o1", "/b"]));
    }

    [Fact]
    public void Libvirt_errors_are_one_line_with_code_and_domain()
    {
        var e = new LibvirtException("virDomainBlockCommit", "domain 'x'", 1, 10, "internal error:\nunable to execute");

        Assert.Equal("libvirt virDomainBlockCommit on domain 'x' failed: internal error: unable to execute (code 1, domain 10)", e.Message);
        Assert.Equal("internal error:\nunable to execute", e.LibvirtMessage);
    }
}

public sealed class AgentChannelTests
{
    [Fact]
    public void The_live_XML_gives_libvirts_agent_channel_state_and_the_console_file()
    {
        const string Live = """
            <domain><devices>
              <channel type='unix'><source mode='bind' path='/run/x.sock'/><target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/></channel>
              <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
              <serial type='file'><source path='/var/lib/lab/serial.log'/><target port='0'/></serial>
            </devices></domain>
            """;

        Assert.Equal(("disconnected", "/var/lib/lab/serial.log"), DomainXml.AgentChannelAndConsole(Live));
        Assert.Equal(("present", null), DomainXml.AgentChannelAndConsole("<domain><devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel><serial type='pty'/></devices></domain>"));
        Assert.Equal((null, "/c.log"), DomainXml.AgentChannelAndConsole("<domain><devices><console type='file'><source path='/c.log'/></console></devices></domain>"));
    }
}
