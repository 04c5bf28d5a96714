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
    private static readonly ExitHookList Hooks = new();
    private static readonly List<PosixSignalRegistration> Registrations = [];
    private static int _installed;

    /// <summary>Registers <paramref name="hook"/>; disposing the result unregisters it (the normal path).</summary>
    public static IDisposable Register(string what, Action hook)
    {
        var registration = Hooks.Register(what, hook);
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Hooks.RunAll();
            foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT })
            {
                // The hooks run, then the process ends as it would have (Cancel stays false).
                Registrations.Add(PosixSignalRegistration.Create(signal, _ => Hooks.RunAll()));
            }
        }
        return registration;
    }

    /// <summary>How many hooks are registered (for tests).</summary>
    public static int Count => Hooks.Count;
}

/// <summary>
/// Clean-up actions run once each, newest first. <see cref="RunAll"/> may be called from two threads at once (the
/// process is ending and a SIGTERM arrives): the second call returns only when the first has run every hook, since
/// the runtime ends the process when a signal handler returns, which would cut a clean-up short between a domain's
/// destroy and its undefine.
/// </summary>
internal sealed class ExitHookList
{
    private readonly ConcurrentDictionary<long, (string What, Action Run)> _hooks = new();
    private readonly Lock _running = new();
    private long _next;

    public IDisposable Register(string what, Action hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        var id = Interlocked.Increment(ref _next);
        _hooks[id] = (what, hook);
        return new Registration(this, id);
    }

    public int Count => _hooks.Count;

    public void RunAll()
    {
        lock (_running)
        {
            foreach (var id in _hooks.Keys.OrderDescending())
            {
                if (_hooks.TryRemove(id, out var h))
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
    }

    private sealed class Registration(ExitHookList list, long id) : IDisposable
    {
        public void Dispose() => list._hooks.TryRemove(id, out _);
    }
}
