using LabKernel.Host;
using LabKernel.Ssh;

namespace LabKernel.Libvirt;

/// <summary>The <see cref="ILabHost"/> that holds a libvirt connection's image files.</summary>
public static class LabHosts
{
    /// <summary>
    /// The lab's own parameter of a libvirt URI whose transport is not SSH (<c>qemu+tls://</c>, <c>qemu+tcp://</c>): where
    /// the hypervisor's files are reached over SSH, <c>USER@HOST[:PORT]</c>, with the URI's <c>keyfile=</c> and
    /// <c>known_hosts=</c> as for an SSH URI. It (and those two) are taken out of the URI before libvirt sees it
    /// (<see cref="ForLibvirt"/>).
    /// </summary>
    public const string SshParameter = "lab_ssh";

    /// <summary>
    /// How the lab reaches the image files of the hypervisor <paramref name="uri"/> names. Over SSH (a connected
    /// <see cref="SshHost"/>, which the caller disposes) whenever the URI's transport is SSH (its options,
    /// <see cref="SshHost.OptionsFromLibvirtUri"/>) or it names an SSH address for the files (<see cref="SshParameter"/>,
    /// e.g. beside <c>qemu+tls://</c>), to loopback too: libvirt reaches that daemon through sshd, and the files are
    /// where sshd is, which may be another container or mount namespace of this machine. <see cref="LocalHost.Instance"/>
    /// for a URI without either to this machine (no host, localhost, a loopback address, this machine's name). A URI
    /// to another host without either is a one-line <see cref="LabUsageException"/>: libvirt reaches the host, but the
    /// lab also needs its files.
    /// </summary>
    public static async Task<ILabHost> ForLibvirtUriAsync(string uri, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (IsSsh(uri))
        {
            if (Uri.TryCreate(uri, UriKind.Absolute, out var ssh) && SshHost.ParseQuery(ssh.Query).ContainsKey(SshParameter))
            {
                throw new LabUsageException($"{uri}: {SshParameter}= is for a URI without SSH (qemu+tls://); this one reaches the host over SSH, and its files the same way");
            }
            return await SshHost.ConnectAsync(SshHost.OptionsFromLibvirtUri(uri), cancellationToken).ConfigureAwait(false);
        }
        if (FilesAddress(uri) is { } address)
        {
            return await SshHost.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        }
        if (LibvirtConnection.IsThisHost(uri))
        {
            return LocalHost.Instance;
        }
        var u = new Uri(uri);
        var driver = u.Scheme.Split('+')[0];
        throw new LabUsageException(
            $"{uri} reaches libvirt on {u.Host} without SSH, but the lab works on the domain's image files on that host (qemu-img, overlays, hashes), which needs SSH access: use {driver}+ssh://USER@{u.Host}{u.AbsolutePath} with ?keyfile=KEY&known_hosts=FILE, or keep this URI and add {SshParameter}=USER@{u.Host}&keyfile=KEY&known_hosts=FILE (the key authorized for USER there, the host key in the known_hosts file)");
    }

    /// <summary>
    /// The SSH options of the files' address a non-SSH URI names (<see cref="SshParameter"/>), null when it names none;
    /// a malformed address is a one-line <see cref="LabUsageException"/>.
    /// </summary>
    public static Ssh.SshHostOptions? FilesAddress(string uri)
    {
        if (IsSsh(uri) || !Uri.TryCreate(uri, UriKind.Absolute, out var u))
        {
            return null;
        }
        var query = SshHost.ParseQuery(u.Query);
        if (!query.TryGetValue(SshParameter, out var address))
        {
            return null;
        }
        // USER@HOST[:PORT], as the authority of an ssh:// URI; the key and known hosts come from the URI's own parameters.
        if (address.Length == 0 || !Uri.TryCreate("ssh://" + address, UriKind.Absolute, out var ssh) || ssh.Host.Length == 0
            || ssh.AbsolutePath is not ("/" or "") || ssh.Query.Length > 0)
        {
            throw new LabUsageException($"{uri}: {SshParameter}={address} is not USER@HOST[:PORT], the SSH address of the hypervisor's files");
        }
        // ParseQuery already unescaped the address once.
        return SshHost.OptionsOf(ssh.Host.Trim('[', ']'), ssh.Port, ssh.UserInfo.Length > 0 ? address[..address.IndexOf('@', StringComparison.Ordinal)].Split(':')[0] : null, query);
    }

    /// <summary>
    /// <paramref name="uri"/> as libvirt is given it: for a URI that names its files' SSH address
    /// (<see cref="SshParameter"/>), without that parameter and the <c>keyfile=</c> and <c>known_hosts=</c> that go
    /// with it; any other URI as it is.
    /// </summary>
    public static string ForLibvirt(string uri)
    {
        if (IsSsh(uri) || !Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Query.Length == 0 || !SshHost.ParseQuery(u.Query).ContainsKey(SshParameter))
        {
            return uri;
        }
        var kept = u.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Where(pair => Uri.UnescapeDataString(pair.Split('=')[0]) is not (SshParameter or "keyfile" or "known_hosts"))
            .ToArray();
        var q = uri.IndexOf('?', StringComparison.Ordinal);
        return uri[..q] + (kept.Length == 0 ? "" : "?" + string.Join('&', kept));
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

    /// <summary>True when the lab reaches <paramref name="uri"/>'s files over SSH: its transport is SSH, or it names their SSH address (<see cref="SshParameter"/>).</summary>
    public static bool FilesOverSsh(string uri) => IsSsh(uri) || FilesAddress(uri) is not null;

    /// <summary>True when the lab works on <paramref name="uri"/>'s files as this machine's own (see <see cref="ForLibvirtUriAsync"/>).</summary>
    public static bool FilesAreLocal(string uri) => !FilesOverSsh(uri) && LibvirtConnection.IsThisHost(uri);
}
