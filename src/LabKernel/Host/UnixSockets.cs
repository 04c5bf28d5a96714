using System.Net.Sockets;

namespace LabKernel;

/// <summary>Unix-domain socket helpers.</summary>
internal static class UnixSockets
{
    /// <summary>
    /// Connects to a unix socket that a starting process is about to create, retrying until it accepts or the
    /// limit passes. The retry waits grow from 1 ms so a ready socket is taken at once.
    /// </summary>
    public static async Task<Socket> ConnectAsync(string path, TimeSpan timeout, string what, CancellationToken cancellationToken, Func<bool>? giveUp = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        var delay = TimeSpan.FromMilliseconds(1);
        string last = "not created yet";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (File.Exists(path))
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                    return socket;
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    last = e.Message;
                }
            }
            if (giveUp?.Invoke() == true || DateTime.UtcNow >= deadline)
            {
                throw new LabTimeoutException($"{what} at {path} to accept a connection", timeout, last);
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
        }
    }
}
