using LabKernel.Host;
using LabKernel.Ssh;

namespace LabKernel.Libvirt;

/// <summary>The <see cref="ILabHost"/> that holds a libvirt connection's image files.</summary>
public static class LabHosts
{
    /// <summary>
    /// How the lab reaches the image files of the hypervisor <paramref name="uri"/> names. Over SSH
    /// (a connected <see cref="SshHost"/> with the URI's options, <see cref="SshHost.OptionsFromLibvirtUri"/>, which the
    /// caller disposes) whenever the URI's transport is SSH, to loopback too: libvirt reaches that daemon through
    /// sshd, and the files are where sshd is, which may be another container or mount namespace of this machine.
    /// <see cref="LocalHost.Instance"/> for a URI without SSH to this machine (no host, localhost, a loopback address,
    /// this machine's name). A URI to another host over a transport that is not SSH (<c>qemu+tls://</c>,
    /// <c>qemu+tcp://</c>) is a one-line <see cref="LabUsageException"/>: libvirt reaches the host, but the lab also
    /// needs its files.
    /// </summary>
    public static async Task<ILabHost> ForLibvirtUriAsync(string uri, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (IsSsh(uri))
        {
            return await SshHost.ConnectAsync(SshHost.OptionsFromLibvirtUri(uri), cancellationToken).ConfigureAwait(false);
        }
        if (LibvirtConnection.IsThisHost(uri))
        {
            return LocalHost.Instance;
        }
        var u = new Uri(uri);
        var driver = u.Scheme.Split('+')[0];
        throw new LabUsageException(
            $"{uri} reaches libvirt on {u.Host} without SSH, but the lab works on the domain's image files on that host (qemu-img, overlays, hashes), which needs SSH access: use {driver}+ssh://USER@{u.Host}{u.AbsolutePath} with ?keyfile=KEY&known_hosts=FILE, the key authorized for USER there and the host key in the known_hosts file");
    }

    /// <summary>True when <paramref name="uri"/>'s transport is SSH (<c>+ssh</c>, <c>+libssh</c>, <c>+libssh2</c>).</summary>
    public static bool IsSsh(string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u))
        {
            return false;
        }
        var plus = u.Scheme.IndexOf('+', StringComparison.Ordinal);
        return plus > 0 && u.Scheme[(plus + 1)..] is "ssh" or "libssh" or "libssh2";
    }

    /// <summary>True when the lab works on <paramref name="uri"/>'s files as this machine's own (see <see cref="ForLibvirtUriAsync"/>).</summary>
    public static bool FilesAreLocal(string uri) => !IsSsh(uri) && LibvirtConnection.IsThisHost(uri);
}
