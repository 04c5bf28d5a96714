namespace LabKernel.Ssh;

/// <summary>SSH to a guest (or to a hypervisor, <see cref="SshHost"/>) failed before a command could run, or the connection dropped. The message is one line naming the target, <c>user@host:port</c>.</summary>
public class GuestSshException : LabException
{
    public GuestSshException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The server refused the lab's key (publickey authentication failed).</summary>
public sealed class SshAuthenticationFailedException(string message, Exception? inner = null) : GuestSshException(message, inner);

/// <summary>The server presented a host key other than the one pinned for it: the connection was dropped before authenticating.</summary>
public sealed class SshHostKeyMismatchException(string message, string presentedFingerprint) : GuestSshException(message)
{
    /// <summary>The SHA-256 fingerprint of the key the server presented (<c>SHA256:...</c>, as ssh-keygen -l prints).</summary>
    public string PresentedFingerprint { get; } = presentedFingerprint;
}

/// <summary>Nothing accepted the TCP connection (no sshd listening yet, or the guest is gone).</summary>
public sealed class SshConnectionRefusedException(string message, Exception? inner = null) : GuestSshException(message, inner);
