using System.Runtime.InteropServices;
using LabKernel.Journal;

namespace LabKernel.Libvirt;

/// <summary>
/// Process-wide libvirt set-up: <c>virInitialize</c>, a silent error handler (errors are read with
/// <c>virGetLastError</c> and thrown, not printed), <c>virEventRegisterDefaultImpl</c> before the first connection,
/// and one background thread looping on <c>virEventRunDefaultImpl</c>, which delivers domain events and
/// keepalives for every connection.
/// </summary>
internal static unsafe class LibvirtRuntime
{
    private static readonly Lock Gate = new();
    private static Thread? _loop;

    public static void EnsureStarted()
    {
        lock (Gate)
        {
            if (_loop is not null)
            {
                return;
            }
            if (LibvirtNative.virInitialize() < 0)
            {
                var (code, dom, msg) = LibvirtException.ReadLastError();
                throw new LibvirtException("virInitialize", "this process", code, dom, msg);
            }
            LibvirtNative.virSetErrorFunc(0, &IgnoreError);
            if (LibvirtNative.virEventRegisterDefaultImpl() < 0)
            {
                var (code, dom, msg) = LibvirtException.ReadLastError();
                throw new LibvirtException("virEventRegisterDefaultImpl", "this process", code, dom, msg);
            }
            // A periodic timer keeps the loop waking up even with no connection open (harmless, cheap).
            LibvirtNative.virEventAddTimeout(1000, &Tick, 0, 0);
            _loop = new Thread(Run) { IsBackground = true, Name = "libvirt event loop" };
            _loop.Start();
        }
    }

    private static void Run()
    {
        while (true)
        {
            if (LibvirtNative.virEventRunDefaultImpl() < 0)
            {
                // The loop's poll failed (not a wait for anything): clear the error and back off instead of spinning
                // on a core; the next iteration polls again.
                LibvirtException.ReadLastError();
                Thread.Sleep(100);
            }
        }
    }

    [UnmanagedCallersOnly]
    private static void IgnoreError(nint userData, nint error)
    {
    }

    [UnmanagedCallersOnly]
    private static void Tick(int timer, nint opaque)
    {
    }

    /// <summary>
    /// Runs one libvirt call on the calling thread, journals it (channel <c>libvirt</c>), and turns a failure into
    /// a <see cref="LibvirtException"/> read from the same thread's <c>virGetLastError</c>.
    /// </summary>
    public static T Call<T>(string function, string target, string journalText, Func<T> call, Func<T, bool> failed, Func<T, string>? reply = null,
        Func<int, int, string, LibvirtException>? error = null)
    {
        var entry = LabJournal.Current.Begin("libvirt", journalText);
        LibvirtNative.virResetLastError();
        var result = call();
        if (failed(result))
        {
            var (code, dom, msg) = LibvirtException.ReadLastError();
            var ex = error?.Invoke(code, dom, msg) ?? new LibvirtException(function, target, code, dom, msg);
            entry.Fail(ex.Message);
            throw ex;
        }
        entry.Complete(reply?.Invoke(result) ?? "ok");
        return result;
    }

    /// <summary>An int-returning call: negative is an error.</summary>
    public static int Call(string function, string target, string journalText, Func<int> call) =>
        Call(function, target, journalText, call, r => r < 0, r => r.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>A call returning a libvirt-allocated string (NULL on error), copied and freed.</summary>
    public static string CallString(string function, string target, string journalText, Func<nint> call)
    {
        var p = Call(function, target, journalText, call, r => r == 0, _ => "string");
        var s = LibvirtNative.TakeString(p) ?? "";
        return s;
    }

    /// <summary>A call returning a SafeHandle (invalid on error).</summary>
    public static THandle CallHandle<THandle>(string function, string target, string journalText, Func<THandle> call, Func<int, int, string, LibvirtException>? error = null)
        where THandle : SafeHandle =>
        Call(function, target, journalText, call, h => h.IsInvalid, _ => "handle", error);
}
