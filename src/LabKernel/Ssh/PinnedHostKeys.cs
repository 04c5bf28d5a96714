using System.Security.Cryptography;

namespace LabKernel.Ssh;

/// <summary>One host key from a known_hosts line: the key type (<c>ssh-ed25519</c>) and its public key blob.</summary>
public sealed record PinnedHostKey(string KeyType, byte[] Blob)
{
    /// <summary>The fingerprint as <c>ssh-keygen -l</c> prints it: <c>SHA256:</c> and unpadded base64.</summary>
    public string Fingerprint => FingerprintOf(Blob);

    public static string FingerprintOf(byte[] blob) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');
}

/// <summary>
/// The host keys a known_hosts file pins for one host and port. Host patterns read: <c>*</c>, <c>host</c>,
/// <c>[host]:port</c>, comma-separated (the guest image writes <c>* ssh-ed25519 AAAA...</c>, since its forwarded
/// port changes with every boot), and OpenSSH's hashed names (<c>|1|SALT|HASH</c>, what <c>HashKnownHosts yes</c>
/// writes: HMAC-SHA1 keyed with the salt over <c>host</c> or <c>[host]:port</c>). Other wildcards and markers
/// (@revoked, @cert-authority) are skipped.
/// </summary>
public static class PinnedHostKeys
{
    public static IReadOnlyList<PinnedHostKey> Read(string knownHostsFile, string host, int port)
    {
        if (!File.Exists(knownHostsFile))
        {
            throw new GuestSshException($"no known_hosts file at {knownHostsFile} to pin the host key of {host}:{port}");
        }
        return Parse(File.ReadAllLines(knownHostsFile), host, port);
    }

    internal static IReadOnlyList<PinnedHostKey> Parse(IEnumerable<string> lines, string host, int port)
    {
        var keys = new List<PinnedHostKey>();
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#' || line[0] == '@')
            {
                continue;
            }
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3 || !fields[0].Split(',').Any(p => Matches(p, host, port)))
            {
                continue;
            }
            try
            {
                keys.Add(new PinnedHostKey(fields[1], Convert.FromBase64String(fields[2])));
            }
            catch (FormatException)
            {
            }
        }
        return keys;
    }

    private static bool Matches(string pattern, string host, int port) =>
        pattern == "*"
        || (port == 22 && pattern.Equals(host, StringComparison.OrdinalIgnoreCase))
        || pattern.Equals($"[{host}]:{port}", StringComparison.OrdinalIgnoreCase)
        || (pattern.StartsWith("|1|", StringComparison.Ordinal) && MatchesHashed(pattern, port == 22 ? host : $"[{host}]:{port}"));

    /// <summary>OpenSSH hashes the name as written in the file (lower case, as ssh writes it).</summary>
    private static bool MatchesHashed(string pattern, string name)
    {
        var parts = pattern.Split('|');
        if (parts.Length != 4)
        {
            return false;
        }
        try
        {
            var salt = Convert.FromBase64String(parts[2]);
            var hash = Convert.FromBase64String(parts[3]);
            return CryptographicOperations.FixedTimeEquals(HMACSHA1.HashData(salt, System.Text.Encoding.UTF8.GetBytes(name.ToLowerInvariant())), hash);
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
