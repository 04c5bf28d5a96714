using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace LabKernel.Libvirt;

/// <summary>
/// The lab's own bindings to libvirt's C API (libvirt.so.0, libvirt-qemu.so.0): only the calls virsh makes for the
/// lab's operations. Pointers to libvirt objects travel in <see cref="SafeHandle"/>s; strings libvirt hands over
/// are copied and released with libc <c>free()</c>. Enum values are libvirt's (include/libvirt/libvirt-domain.h).
/// </summary>
internal static unsafe partial class LibvirtNative
{
    private const string Lib = "libvirt.so.0";
    private const string QemuLib = "libvirt-qemu.so.0";
    private const string LibC = "libc.so.6";

    // ------------------------------------------------------------------ runtime, errors, events

    [LibraryImport(Lib)]
    internal static partial int virInitialize();

    [LibraryImport(Lib)]
    internal static partial nint virGetLastError();

    [LibraryImport(Lib)]
    internal static partial void virResetLastError();

    [LibraryImport(Lib)]
    internal static partial void virSetErrorFunc(nint userData, delegate* unmanaged<nint, nint, void> handler);

    [LibraryImport(Lib)]
    internal static partial int virEventRegisterDefaultImpl();

    [LibraryImport(Lib)]
    internal static partial int virEventRunDefaultImpl();

    [LibraryImport(Lib)]
    internal static partial int virEventAddTimeout(int frequency, delegate* unmanaged<int, nint, void> cb, nint opaque, nint ff);

    [LibraryImport(Lib)]
    internal static partial int virEventRemoveTimeout(int timer);

    [LibraryImport(LibC)]
    internal static partial void free(nint ptr);

    // ------------------------------------------------------------------ connection

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial ConnectHandle virConnectOpen(string? uri);

    [LibraryImport(Lib)]
    internal static partial int virConnectClose(nint conn);

    [LibraryImport(Lib)]
    internal static partial int virConnectIsAlive(ConnectHandle conn);

    [LibraryImport(Lib)]
    internal static partial int virConnectRegisterCloseCallback(ConnectHandle conn, nint cb, nint opaque, nint freecb);

    [LibraryImport(Lib)]
    internal static partial int virConnectUnregisterCloseCallback(ConnectHandle conn, nint cb);

    [LibraryImport(Lib)]
    internal static partial nint virConnectGetURI(ConnectHandle conn);

    [LibraryImport(Lib)]
    internal static partial int virConnectGetLibVersion(ConnectHandle conn, out ulong version);

    [LibraryImport(Lib)]
    internal static partial int virConnectSetKeepAlive(ConnectHandle conn, int interval, uint count);

    [LibraryImport(Lib)]
    internal static partial int virConnectDomainEventRegisterAny(ConnectHandle conn, nint dom, int eventId, nint cb, nint opaque, nint freecb);

    [LibraryImport(Lib)]
    internal static partial int virConnectDomainEventDeregisterAny(ConnectHandle conn, int callbackId);

    // ------------------------------------------------------------------ domains

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainLookupByName(ConnectHandle conn, string name);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainDefineXML(ConnectHandle conn, string xml);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainCreateXML(ConnectHandle conn, string xml, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainFree(nint dom);

    [LibraryImport(Lib)]
    internal static partial int virConnectListAllDomains(ConnectHandle conn, out nint domains, uint flags);

    [LibraryImport(Lib)]
    internal static partial nint virDomainGetName(nint dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainCreate(DomainHandle dom);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainSave(DomainHandle dom, string to);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainRestore(ConnectHandle conn, string from);

    [LibraryImport(Lib)]
    internal static partial int virDomainSuspend(DomainHandle dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainResume(DomainHandle dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainShutdown(DomainHandle dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainShutdownFlags(DomainHandle dom, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainDestroy(DomainHandle dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainUndefineFlags(DomainHandle dom, uint flags);

    [LibraryImport(Lib)]
    internal static partial nint virDomainGetXMLDesc(DomainHandle dom, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainGetState(DomainHandle dom, out int state, out int reason, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainIsPersistent(DomainHandle dom);

    [LibraryImport(Lib)]
    internal static partial int virDomainReboot(DomainHandle dom, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainAttachDeviceFlags(DomainHandle dom, string xml, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainDetachDeviceFlags(DomainHandle dom, string xml, uint flags);

    // ------------------------------------------------------------------ snapshots

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SnapshotHandle virDomainSnapshotCreateXML(DomainHandle dom, string xml, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainListAllSnapshots(DomainHandle dom, out nint snaps, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SnapshotHandle virDomainSnapshotLookupByName(DomainHandle dom, string name, uint flags);

    [LibraryImport(Lib)]
    internal static partial nint virDomainSnapshotGetXMLDesc(SnapshotHandle snap, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainSnapshotDelete(SnapshotHandle snap, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainRevertToSnapshot(SnapshotHandle snap, uint flags);

    [LibraryImport(Lib)]
    internal static partial int virDomainSnapshotFree(nint snap);

    // ------------------------------------------------------------------ block jobs

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockCommit(DomainHandle dom, string disk, string? @base, string? top, ulong bandwidth, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockPull(DomainHandle dom, string disk, ulong bandwidth, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockRebase(DomainHandle dom, string disk, string? @base, ulong bandwidth, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockCopy(DomainHandle dom, string disk, string destxml, nint @params, int nparams, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainGetBlockJobInfo(DomainHandle dom, string disk, out BlockJobInfo info, uint flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockJobAbort(DomainHandle dom, string disk, uint flags);

    // ------------------------------------------------------------------ libvirt-qemu

    [LibraryImport(QemuLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainQemuAgentCommand(DomainHandle dom, string cmd, int timeout, uint flags);

    [LibraryImport(QemuLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virConnectDomainQemuMonitorEventRegister(ConnectHandle conn, DomainHandle dom, string? @event, nint cb, nint opaque, nint freecb, uint flags);

    [LibraryImport(QemuLib)]
    internal static partial int virConnectDomainQemuMonitorEventDeregister(ConnectHandle conn, int callbackId);

    [LibraryImport(QemuLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainQemuMonitorCommand(DomainHandle dom, string cmd, out nint result, uint flags);

    /// <summary><c>virDomainBlockJobInfo</c>: type, bandwidth (unsigned long), cur, end.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BlockJobInfo
    {
        public int Type;
        public nuint Bandwidth;
        public ulong Cur;
        public ulong End;
    }

    /// <summary>Copies a string libvirt allocated and frees it.</summary>
    internal static string? TakeString(nint p)
    {
        if (p == 0)
        {
            return null;
        }
        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            free(p);
        }
    }
}

/// <summary>libvirt's enum values used by the lab (libvirt-domain.h, libvirt-domain-snapshot.h).</summary>
internal static class Vir
{
    public const int EventIdLifecycle = 0;
    public const int EventIdBlockJob2 = 16;

    public const uint DomainXmlInactive = 2;
    public const uint AffectLive = 1;
    public const uint AffectConfig = 2;

    public const uint UndefineManagedSave = 1;
    public const uint UndefineSnapshotsMetadata = 2;
    public const uint UndefineCheckpointsMetadata = 16;

    public const uint ShutdownAcpi = 1;
    public const uint ShutdownGuestAgent = 2;
    public const uint RebootGuestAgent = 2;

    public const uint SnapshotCreateNoMetadata = 4;
    public const uint SnapshotCreateDiskOnly = 16;
    public const uint SnapshotCreateReuseExt = 32;
    public const uint SnapshotCreateQuiesce = 64;
    public const uint SnapshotCreateAtomic = 128;
    public const uint SnapshotCreateLive = 256;

    public const uint SnapshotDeleteChildren = 1;
    public const uint SnapshotDeleteMetadataOnly = 2;

    public const uint SnapshotRevertRunning = 1;
    public const uint SnapshotRevertPaused = 2;
    public const uint SnapshotRevertForce = 4;

    public const uint CommitShallow = 1;
    public const uint CommitDelete = 2;
    public const uint CommitActive = 4;
    public const uint CommitBandwidthBytes = 16;

    public const uint JobAbortAsync = 1;
    public const uint JobAbortPivot = 2;

    public const uint RebaseShallow = 1;
    public const uint RebaseBandwidthBytes = 64;
    public const uint PullBandwidthBytes = 64;

    public const uint MonitorHmp = 1;
    public const int AgentTimeoutBlock = -2;

    public const int ErrNoDomain = 42;
    public const int ErrNoDomainSnapshot = 72;
}

/// <summary>A <c>virConnectPtr</c>: <c>virConnectClose</c> on release.</summary>
internal sealed class ConnectHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public ConnectHandle() : base(true) { }

    protected override bool ReleaseHandle() => LibvirtNative.virConnectClose(handle) >= 0;
}

/// <summary>A <c>virDomainPtr</c>: <c>virDomainFree</c> on release.</summary>
internal sealed class DomainHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public DomainHandle() : base(true) { }

    protected override bool ReleaseHandle() => LibvirtNative.virDomainFree(handle) == 0;
}

/// <summary>A <c>virDomainSnapshotPtr</c>: <c>virDomainSnapshotFree</c> on release.</summary>
internal sealed class SnapshotHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SnapshotHandle() : base(true) { }

    internal SnapshotHandle(nint existing) : base(true) => SetHandle(existing);

    protected override bool ReleaseHandle() => LibvirtNative.virDomainSnapshotFree(handle) == 0;
}
