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
}
