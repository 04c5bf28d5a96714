namespace LabKernel.IntegrationTests;

/// <summary>
/// scripts/test runs four lanes at once, because a TCG guest is mostly one busy thread and much of a test is waiting
/// on it: with one lane about half of the machine was idle, with three (session 15) still a fifth to a quarter.
/// <list type="bullet">
/// <item>Lane A, from the start: the integration classes with the trait <c>Lane=BesideUnit</c> (the notebook
/// conformance and the notebook tests that share its runs, and other classes that use no libvirtd).</item>
/// <item>Lane B, from the start: every integration class without a trait, among them those that use this machine's
/// libvirtd with its shared domain (<c>LibvirtCollection</c>).</item>
/// <item>Lane C, from the start: <c>Lane=FromTheStart</c>, long classes that use no libvirtd of this machine.</item>
/// <item>Lane D: the unit projects, then <c>Lane=BesideB</c>: classes that may use this machine's libvirtd beside lane B
/// (a researcher's two-disk domain, 06 on libvirt), and two QEMU-only classes placed there for balance.</item>
/// <item>First in lane B, before lane D's libvirt classes start (lane D waits for it): <c>Lane=BeforeLibvirtLanes</c>,
/// the class that restarts libvirtd.</item>
/// </list>
/// A class gets a trait only if it can run beside everything in the other lanes: it uses no fixed port, no shared
/// cache it changes (warm states are written by rename, so concurrent restores and saves are safe), and its timing
/// margins hold on a loaded host; with A or C it uses no libvirtd of this machine at all; with D it may, but only its
/// own domains (it lists, checks and removes no domain it did not make, and never restarts libvirtd), and lane B's
/// classes in turn look only at their own domains. A class without a trait runs in lane B, so a new class is never
/// moved beside the others by accident.
/// </summary>
public static class Lanes
{
    public const string Name = "Lane";

    /// <summary>Lane A: uses no libvirtd of this machine; shares notebook runs with the conformance (one test process).</summary>
    public const string BesideUnit = "BesideUnit";

    /// <summary>
    /// Lane C: long classes that use no libvirtd of this machine (QEMU only, or the namespaced second host's own
    /// libvirtd) and share no notebook run with lane A's classes (<c>NotebookRun.SharedAsync</c> shares within one
    /// test process).
    /// </summary>
    public const string FromTheStart = "FromTheStart";

    /// <summary>Lane D, after the unit projects: classes that use this machine's libvirtd only with domains of their own, or none.</summary>
    public const string BesideB = "BesideB";

    /// <summary>Alone among the libvirt lanes, before the rest of B and D: it stops and starts this machine's libvirtd.</summary>
    public const string BeforeLibvirtLanes = "BeforeLibvirtLanes";
}
