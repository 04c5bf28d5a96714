using System.Runtime.InteropServices;

namespace LabKernel.Libvirt;

/// <summary>
/// A libvirt call failed. <see cref="Code"/> and <see cref="ErrorDomain"/> are libvirt's <c>virErrorNumber</c> and
/// <c>virErrorDomain</c> (from <c>virGetLastError</c>); <see cref="LibvirtMessage"/> is libvirt's own text. The
/// exception message is one line naming the call and its target (domain or URI).
/// </summary>
public class LibvirtException : LabException
{
    public LibvirtException(string operation, string target, int code, int errorDomain, string libvirtMessage)
        : base(OneLine($"libvirt {operation} on {target} failed: {libvirtMessage} (code {code}, domain {errorDomain})"))
    {
        Operation = operation;
        Target = target;
        Code = code;
        ErrorDomain = errorDomain;
        LibvirtMessage = libvirtMessage;
    }

    protected LibvirtException(string message, string operation, string target, int code, int errorDomain, string libvirtMessage)
        : base(OneLine(message))
    {
        Operation = operation;
        Target = target;
        Code = code;
        ErrorDomain = errorDomain;
        LibvirtMessage = libvirtMessage;
    }

    /// <summary>The libvirt function, e.g. <c>virDomainBlockCommit</c>.</summary>
    public string Operation { get; }

    /// <summary>What it was called on: <c>domain 'x'</c>, <c>qemu:///system</c>.</summary>
    public string Target { get; }

    /// <summary>libvirt's error code (<c>virErrorNumber</c>), e.g. 42 = VIR_ERR_NO_DOMAIN.</summary>
    public int Code { get; }

    /// <summary>libvirt's error domain (<c>virErrorDomain</c>): which part of libvirt raised it.</summary>
    public int ErrorDomain { get; }

    /// <summary>libvirt's message as it gave it.</summary>
    public string LibvirtMessage { get; }

    /// <summary>
    /// libvirt says it cannot do this at all (VIR_ERR_NO_SUPPORT 3, VIR_ERR_CONFIG_UNSUPPORTED 67,
    /// VIR_ERR_ARGUMENT_UNSUPPORTED 74, VIR_ERR_OPERATION_UNSUPPORTED 84): a refusal, not a failure of something it does
    /// (a lost connection, a missing snapshot, a timeout).
    /// </summary>
    public bool IsUnsupported => Code is 3 or 67 or 74 or 84;

    internal static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Reads the calling thread's last libvirt error (must run on the thread whose call failed).</summary>
    internal static (int Code, int Domain, string Message) ReadLastError()
    {
        var p = LibvirtNative.virGetLastError();
        if (p == 0)
        {
            return (0, 0, "unknown libvirt error (no virError set)");
        }
        // struct _virError { int code; int domain; char *message; ... }
        var code = Marshal.ReadInt32(p, 0);
        var domain = Marshal.ReadInt32(p, 4);
        var msg = Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(p, 8)) ?? "";
        LibvirtNative.virResetLastError();
        return (code, domain, msg);
    }
}

/// <summary>libvirtd could not be reached at a URI (not running, wrong socket, ssh refused).</summary>
public sealed class LibvirtConnectionException : LibvirtException
{
    public LibvirtConnectionException(string uri, int code, int errorDomain, string libvirtMessage)
        : base($"cannot connect to libvirt at {uri}: {libvirtMessage} (code {code}; is libvirtd running? scripts/libvirtd-up starts it)",
            "virConnectOpen", uri, code, errorDomain, libvirtMessage)
    {
        Uri = uri;
    }

    public string Uri { get; }
}

/// <summary>
/// libvirtd went away during the run and did not accept connections again within the reconnect limit
/// (<see cref="LibvirtConnection.ReconnectAsync"/>): the hypervisor is down, not the experiment wrong. `lab sweep`
/// runs such a combination again on another host.
/// </summary>
public sealed class LibvirtConnectionLostException(string uri, TimeSpan limit, string lastStatus, Exception inner)
    : LabException($"libvirtd at {uri} went away and did not accept connections again within {limit.TotalSeconds:0} s: {lastStatus}", inner)
{
    public string Uri { get; } = uri;
}

/// <summary>No domain of that name on the connection (VIR_ERR_NO_DOMAIN).</summary>
public sealed class LibvirtDomainNotFoundException : LibvirtException
{
    public LibvirtDomainNotFoundException(string name, string uri, int code, int errorDomain, string libvirtMessage)
        : base($"no libvirt domain named '{name}' at {uri} ({libvirtMessage})", "virDomainLookupByName", $"domain '{name}'", code, errorDomain, libvirtMessage)
    {
        Name = name;
    }

    public string Name { get; }
}
