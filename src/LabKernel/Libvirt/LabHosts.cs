using LabKernel.Host;
using LabKernel.Ssh;

namespace LabKernel.Libvirt;

/// <summary>The <see cref="ILabHost"/> that holds a libvirt connection's image files.</summary>
public static class LabHosts
{
    /// <summary>
    /// <see cref="LocalHost.Instance"/> when <paramref name="uri"/> is this machine (<see cref="LibvirtConnection.IsThisHost"/>:
    /// no host, localhost, a loopback address, this machine's name); otherwise a connected <see cref="SshHost"/> with
    /// the URI's SSH options (<see cref="SshHost.OptionsFromLibvirtUri"/>), which the caller disposes. A URI to
    /// another host over a transport that is not SSH (<c>qemu+tls://</c>, <c>qemu+tcp://</c>) is a one-line
    /// <see cref="LabUsageException"/>: libvirt reaches the host, but the lab also needs its files.
    /// </summary>
    public static async Task<ILabHost> ForLibvirtUriAsync(string uri, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (LibvirtConnection.IsThisHost(uri))
        {
            return LocalHost.Instance;
        }
        var u = new Uri(uri);
        var transport = u.Scheme.Contains('+', StringComparison.Ordinal) ? u.Scheme[(u.Scheme.IndexOf('+', StringComparison.Ordinal) + 1)..] : "";
        if (transport is not ("ssh" or "libssh" or "libssh2"))
        {
            var driver = u.Scheme.Split('+')[0];
            throw new LabUsageException(
                $"{uri} reaches libvirt on {u.Host} without SSH, but the lab works on the domain's image files on that host (qemu-img, overlays, hashes), which needs SSH access: use {driver}+ssh://USER@{u.Host}{u.AbsolutePath} with ?keyfile=KEY&known_hosts=FILE, the key authorized for USER there and the host key in the known_hosts file");
        }
        return await SshHost.ConnectAsync(SshHost.OptionsFromLibvirtUri(uri), cancellationToken).ConfigureAwait(false);
    }
}
