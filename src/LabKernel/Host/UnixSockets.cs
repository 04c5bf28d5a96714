using System.Net.Sockets;

namespace LabKernel.Host;

/// <summary>Unix-domain socket helpers.</summary>
internal static class UnixSockets
{
    private static readonly Backoff Retry = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(50));

    /// <summary>
    /// Connects to a unix socket that a starting process is about to create, retrying until it accepts or the
    /// limit passes (or <paramref name="giveUp"/> says the process is gone). The retry waits grow from 1 ms so a
    /// ready socket is taken at once. The waits are on <paramref name="time"/>'s clock (default: the system's).
    /// </summary>
    public static Task<Socket> ConnectAsync(string path, TimeSpan timeout, string what, CancellationToken cancellationToken, Func<bool>? giveUp = null, TimeProvider? time = null)
    {
        var awaited = $"{what} at {path} to accept a connection";
        var last = "not created yet";
        return Poll.UntilAsync<Socket>(async ct =>
        {
            if (File.Exists(path))
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                    return (true, socket, "");
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    last = e.Message;
                }
            }
            if (giveUp?.Invoke() == true)
            {
                throw new LabTimeoutException(awaited, timeout, last);
            }
            return (false, null!, last);
        }, awaited, timeout, Retry, time, cancellationToken);
    }
}
