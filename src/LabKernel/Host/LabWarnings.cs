namespace LabKernel.Host;

/// <summary>
/// Warnings the lab has no caller to hand to: a clean-up at process exit that failed, a user's domain left running
/// on the lab's overlay. LabKernel writes nothing to the console itself; its host subscribes (the <c>lab</c> program
/// prints them on stderr, LabNotebooks on a notebook's stderr). Without a subscriber they go to
/// <see cref="System.Diagnostics.Trace"/>.
/// </summary>
public static class LabWarnings
{
    /// <summary>Raised with one line of text, without a "lab:" prefix.</summary>
    public static event Action<string>? Raised;

    /// <summary>True when a host listens (LabNotebooks does not add a second console writer then).</summary>
    public static bool HasListeners => Raised is not null;

    internal static void Raise(string message)
    {
        var handlers = Raised;
        if (handlers is null)
        {
            System.Diagnostics.Trace.TraceWarning("lab: " + message);
            return;
        }
        foreach (var handler in handlers.GetInvocationList().Cast<Action<string>>())
        {
            try
            {
                handler(message);
            }
            catch (IOException)
            {
                // A closed stderr at process exit must not hide the other listeners.
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}
