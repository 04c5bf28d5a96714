namespace LabKernel.Machines;

/// <summary>
/// The defaults of every guest the lab starts or takes over, in one place: each options type (<c>LabSetup</c>,
/// <c>LabGuestOptions</c>, <c>EmbeddedGuestOptions</c>, <c>LibvirtGuestOptions</c>, <c>MachineOptions</c>,
/// <c>DomainSpec</c>) starts from these, so a default changed here changes it on both backends.
/// </summary>
public static class GuestDefaults
{
    /// <summary>Guest memory: 1 GiB (the lean guest needs far less; fio and the writers keep their files in its page cache).</summary>
    public const int MemoryMiB = 1024;

    /// <summary>Virtual CPUs: one (TCG runs one thread per vCPU; the hosts here have two cores).</summary>
    public const int Cpus = 1;

    /// <summary>How long a start waits for the guest agent: 3 minutes (a cold boot under TCG on a busy host).</summary>
    public static readonly TimeSpan AgentTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The least memory the embedded guest boots in; the most is what QEMU accepts on a 64-bit host.</summary>
    public const int MinMemoryMiB = 128, MaxMemoryMiB = 1 << 20;

    /// <summary>The most virtual CPUs a lab guest gets (QEMU's q35 limit is higher; TCG runs a thread each).</summary>
    public const int MaxCpus = 64;

    /// <summary>
    /// The checks every options type makes of these values when a guest is started, before anything is made: a
    /// one-line <see cref="LabUsageException"/> naming the option (<paramref name="owner"/> is the options type).
    /// </summary>
    public static void Check(string owner, int memoryMiB, int cpus, TimeSpan agentTimeout)
    {
        if (memoryMiB is < MinMemoryMiB or > MaxMemoryMiB)
        {
            throw new LabUsageException($"{owner}.MemoryMiB must be from {MinMemoryMiB} to {MaxMemoryMiB}, not {memoryMiB}");
        }
        if (cpus is < 1 or > MaxCpus)
        {
            throw new LabUsageException($"{owner}.Cpus must be from 1 to {MaxCpus}, not {cpus}");
        }
        CheckPositive(owner, "AgentTimeout", agentTimeout);
    }

    /// <summary>A time limit must be positive: a one-line <see cref="LabUsageException"/> naming the option.</summary>
    public static void CheckPositive(string owner, string option, TimeSpan limit)
    {
        if (limit <= TimeSpan.Zero)
        {
            throw new LabUsageException($"{owner}.{option} must be a positive time, not {limit}");
        }
    }
}
