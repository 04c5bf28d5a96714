using System.Text.RegularExpressions;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// Which QMP errors the block layer turns into its own exceptions: a table keyed on QEMU's error class
/// (<c>error.class</c>). QEMU reports most "no such node" errors as <c>GenericError</c>; for those a row names the
/// commands that can raise it and QEMU's wording of that one error (<c>error.desc</c>), quoted from QEMU's source.
/// This is the only place the lab reads a QMP description; an error no row matches is thrown as it came.
/// </summary>
internal static partial class QmpErrorTranslation
{
    /// <summary>One kind of QMP error the block layer recognises.</summary>
    /// <param name="ErrorClass">QEMU's <c>error.class</c>.</param>
    /// <param name="Commands">The commands that raise it with this wording; null: any command.</param>
    /// <param name="Wording">QEMU's description, with the name it reports in a <c>name</c> group; null: any description.</param>
    /// <param name="Source">Where QEMU says it, for the reader who checks the wording against a new QEMU.</param>
    internal sealed record Row(string ErrorClass, IReadOnlySet<string>? Commands, Regex? Wording, string Source)
    {
        public bool Matches(QmpErrorException e) =>
            e.ErrorClass == ErrorClass
            && (Commands is null || Commands.Contains(e.CommandName))
            && (Wording is null || Wording.IsMatch(e.Description));
    }

    /// <summary>The commands that name a node through <c>bdrv_lookup_bs</c> (device or node-name).</summary>
    private static readonly IReadOnlySet<string> LookupCommands = new HashSet<string>(StringComparer.Ordinal)
    {
        "transaction", "blockdev-snapshot-sync", "blockdev-snapshot", "block-commit", "block-stream",
        "blockdev-mirror", "drive-mirror",
    };

    internal static readonly IReadOnlyList<Row> Rows =
    [
        // blockdev.c qmp_block_commit and qom-get (qom/qom-qmp-cmds.c): error_set(ERROR_CLASS_DEVICE_NOT_FOUND,
        // "Device '%s' not found"); older QEMU also raised bdrv_lookup_bs's wording under this class.
        new("DeviceNotFound", null, null, "ERROR_CLASS_DEVICE_NOT_FOUND (\"Device '%s' not found\")"),

        // block.c bdrv_lookup_bs: error_setg(errp, "Cannot find device='%s' nor node-name='%s'", ...), a
        // GenericError, for a device or node named in a snapshot, commit, stream or mirror.
        new("GenericError", LookupCommands, LookupWording(), "block.c bdrv_lookup_bs"),

        // blockdev.c qmp_blockdev_del: error_setg(errp, "Failed to find node with node-name='%s'", node_name).
        new("GenericError", new HashSet<string>(StringComparer.Ordinal) { "blockdev-del" }, BlockdevDelWording(), "blockdev.c qmp_blockdev_del"),
    ];

    [GeneratedRegex(@"^Cannot find device='(?<device>[^']*)' nor node-name='(?<name>[^']*)'$", RegexOptions.CultureInvariant)]
    private static partial Regex LookupWording();

    [GeneratedRegex(@"^Failed to find node with node-name='(?<name>[^']*)'$", RegexOptions.CultureInvariant)]
    private static partial Regex BlockdevDelWording();

    [GeneratedRegex(@"^Device '(?<name>[^']*)' not found$", RegexOptions.CultureInvariant)]
    private static partial Regex DeviceNotFoundWording();

    /// <summary>The row that recognises <paramref name="e"/>, or null.</summary>
    internal static Row? Find(QmpErrorException e) => Rows.FirstOrDefault(r => r.Matches(e));

    /// <summary>
    /// <see cref="UnknownBlockNodeException"/> (with the QMP error inside) for a "no such device or node" error a
    /// row recognises; any other exception is returned as it is.
    /// </summary>
    internal static Exception Translate(Exception e) =>
        e is QmpErrorException q && Find(q) is { } row ? new UnknownBlockNodeException(NameIn(row, q.Description), $"in QEMU ({q.Description})", q) : e;

    /// <summary>The device or node the error names: from the row's wording, else from any wording QEMU uses for it.</summary>
    private static string NameIn(Row row, string description)
    {
        foreach (var wording in (Regex?[])[row.Wording, LookupWording(), BlockdevDelWording(), DeviceNotFoundWording()])
        {
            if (wording?.Match(description) is { Success: true } m)
            {
                var name = m.Groups["name"].Value;
                return name.Length > 0 || m.Groups["device"] is not { Success: true } device ? name : device.Value;
            }
        }
        return description;
    }
}
