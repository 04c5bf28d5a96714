namespace LabKernel.Machines;

/// <summary>One disk: the active layer of a qcow2 (or raw) chain, opened as a named <c>-blockdev</c> node.</summary>
/// <param name="File">The active layer's file. Its backing chain is opened by QEMU from the image headers.</param>
/// <param name="NodeName">The format node's name; block jobs address the disk by it. The protocol node is <c>{NodeName}-file</c>.</param>
/// <param name="Format">qcow2 or raw.</param>
/// <param name="ReadOnly">Open read-only (QEMU takes a shared lock only).</param>
public sealed record DriveSpec(string File, string NodeName = "disk0", string Format = "qcow2", bool ReadOnly = false);

/// <summary>How to start a QEMU machine.</summary>
public sealed record MachineOptions
{
    /// <summary>A short name for logs and the runtime folder.</summary>
    public string Name { get; init; } = "lab";

    public required IReadOnlyList<DriveSpec> Drives { get; init; }

    /// <summary>Direct kernel boot: kernel, initrd and command line. Null: boot from the first disk's firmware.</summary>
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? KernelCommandLine { get; init; }

    public int MemoryMiB { get; init; } = GuestDefaults.MemoryMiB;
    public int Cpus { get; init; } = GuestDefaults.Cpus;

    /// <summary>Null: <see cref="Accelerator.ChooseAsync"/> decides.</summary>
    public AcceleratorChoice? Accelerator { get; init; }

    /// <summary>Add the qemu-guest-agent virtio-serial port and wait for the agent to answer.</summary>
    public bool GuestAgent { get; init; } = true;

    /// <summary>User-mode networking with the guest's port 22 forwarded to a free loopback port.</summary>
    public bool Network { get; init; } = true;

    /// <summary>For SSH into the guest: the key authorized in it and a known_hosts file pinning its host key.</summary>
    public string? SshPrivateKey { get; init; }
    public string? SshKnownHosts { get; init; }

    /// <summary>How long to wait for the guest agent after QEMU starts.</summary>
    public TimeSpan AgentTimeout { get; init; } = GuestDefaults.AgentTimeout;

    /// <summary>More QEMU arguments, appended as given.</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>Start paused (<c>-S</c>); the caller resumes with QMP <c>cont</c>.</summary>
    public bool StartPaused { get; init; }

    /// <summary>
    /// A saved VM state to start from instead of booting: a migration stream the lab wrote to a file (a checkpoint's
    /// memory file). QEMU starts with <c>-incoming defer -S</c>, loads it with QMP <c>migrate-incoming</c>
    /// (<c>exec:cat FILE</c>) and is resumed with <c>cont</c>. The drives must hold the disks exactly as they were when
    /// the state was saved (a fresh overlay over the layer frozen with it), and every other option must be the same.
    /// </summary>
    public string? IncomingState { get; init; }

    /// <summary>Folder for sockets and logs; null: a new private folder that is removed on dispose.</summary>
    public string? RuntimeFolder { get; init; }

    /// <summary>
    /// The clock of the machine's waits: its monitor (QMP commands and events, and the block layer over it), its guest
    /// agent, the sockets' connects, a saved state's load, and its exit at shutdown. Tests pass a fake one.
    /// </summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>A one-line <see cref="LabUsageException"/> naming the first option out of range (see <see cref="GuestDefaults.Check"/>).</summary>
    public void Validate()
    {
        GuestDefaults.Check(nameof(MachineOptions), MemoryMiB, Cpus, AgentTimeout);
        if (Time is null)
        {
            throw new LabUsageException("MachineOptions.Time: give a clock (TimeProvider.System unless a test fakes one)");
        }
        if (Drives.Count == 0)
        {
            throw new LabUsageException("MachineOptions.Drives: a machine needs at least one drive");
        }
        if (Drives.Select(d => d.NodeName).Distinct(StringComparer.Ordinal).Count() != Drives.Count)
        {
            throw new LabUsageException($"MachineOptions.Drives: node names must differ ({string.Join(", ", Drives.Select(d => d.NodeName))})");
        }
    }
}
