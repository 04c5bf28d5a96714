namespace LabKernel.IntegrationTests;

/// <summary>
/// scripts/test runs three lanes at once, because one lane leaves about half of the machine idle (a TCG guest is
/// mostly one busy thread, and much of a test is waiting on it); with two, a fifth of it still was (session 15).
/// Lane A is the unit projects, then the integration classes with the trait <c>Lane=BesideUnit</c>; lane C, from the
/// start, the classes with <c>Lane=FromTheStart</c>; lane B every other integration class. A class gets either trait
/// only if it can run beside anything in lane B: it uses no libvirtd (lane B restarts it and compares the list of
/// domains before and after), no fixed port, no shared cache it changes (warm states are written by rename, so
/// concurrent restores and saves are safe), and its timing margins hold on a loaded host. A class without the
/// trait runs in lane B, so a new class is never moved beside the others by accident.
/// </summary>
public static class Lanes
{
    public const string Name = "Lane";

    public const string BesideUnit = "BesideUnit";

    /// <summary>
    /// Lane C, started at once beside both others (lane A begins with the unit projects): long classes that use no
    /// libvirtd of this machine (QEMU only, or the namespaced second host's own libvirtd), so lane B's libvirtd restarts
    /// and domain-list checks cannot see them, and that share no notebook run with lane A's classes
    /// (<c>NotebookRun.SharedAsync</c> shares within one test process).
    /// </summary>
    public const string FromTheStart = "FromTheStart";
}
