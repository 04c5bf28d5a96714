using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace LabKernel.Host;

/// <summary>
/// Last-chance clean-up when the lab's process ends with guests still up: on normal exit, SIGTERM (what
/// <c>lab run</c> sends its kernel first) and SIGINT, every registered hook runs once, newest first. QEMU machines
/// quit, lab-made libvirt domains are destroyed and undefined, so an interrupted notebook leaves no guest writing
/// into a chain nobody watches.
/// </summary>
public static class ProcessExitHooks
{
    private static readonly ConcurrentDictionary<long, (string What, Action Run)> Hooks = new();
    private static readonly List<PosixSignalRegistration> Registrations = [];
    private static long _next;
    private static int _installed;

    /// <summary>Registers <paramref name="hook"/>; disposing the result unregisters it (the normal path).</summary>
    public static IDisposable Register(string what, Action hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        var id = Interlocked.Increment(ref _next);
        Hooks[id] = (what, hook);
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => RunAll();
            foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT })
            {
                // The hooks run, then the process ends as it would have (Cancel stays false).
                Registrations.Add(PosixSignalRegistration.Create(signal, _ => RunAll()));
            }
        }
        return new Registration(id);
    }

    /// <summary>How many hooks are registered (for tests).</summary>
    public static int Count => Hooks.Count;

    private static void RunAll()
    {
        foreach (var id in Hooks.Keys.OrderDescending())
        {
            if (Hooks.TryRemove(id, out var h))
            {
                try
                {
                    h.Run();
                }
                catch (Exception e)
                {
                    LabWarnings.Raise($"clean-up of {h.What} at exit failed: {e.Message}");
                }
            }
        }
    }

    private sealed class Registration(long id) : IDisposable
    {
        public void Dispose() => Hooks.TryRemove(id, out _);
    }
}
