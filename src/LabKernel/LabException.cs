namespace LabKernel;

/// <summary>
/// Base of every error the lab raises on purpose. <see cref="Exception.Message"/> is one line a user can act on;
/// the command line programs print it without a stack trace.
/// </summary>
public class LabException : Exception
{
    public LabException(string message) : base(message) { }
    public LabException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>A wait for a guest, a job or an event ran past its time limit. The message names what was awaited.</summary>
public sealed class LabTimeoutException : LabException
{
    public LabTimeoutException(string awaited, TimeSpan limit, string? detail = null)
        : base($"timed out after {limit.TotalSeconds:0.#} s waiting for {awaited}" + (detail is null ? "" : $": {detail}"))
    {
        Awaited = awaited;
        Limit = limit;
    }

    public string Awaited { get; }
    public TimeSpan Limit { get; }
}

/// <summary>Bad input from the caller (a path that does not exist, a file the lab refuses to overwrite, ...).</summary>
public sealed class LabUsageException : LabException
{
    public LabUsageException(string message) : base(message) { }
}

/// <summary>The guest stopped (QEMU exited, the domain shut off) while the lab waited for it.</summary>
public sealed class GuestNotRunningException : LabException
{
    public GuestNotRunningException(string message) : base(message) { }
}
