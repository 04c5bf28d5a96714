using System.Text.Json.Serialization;

namespace LabKernel.GuestAgent;

// The arguments of the agent commands the lab sends. The agent speaks QMP's protocol and its schema is QAPI too,
// so they are built the way QMP arguments are, with Qmp.QmpJson.Args: kebab-case member names, nulls left out.

/// <summary>
/// <c>guest-exec</c>'s arguments. The lab captures the output of what it runs; the kill it sends after a time
/// limit passes captures nothing, so <c>capture-output</c> is left out there, as are input and environment when
/// none are given.
/// </summary>
internal sealed record GuestExecArguments(string Path, IReadOnlyList<string> Arg)
{
    public bool? CaptureOutput { get; init; }
    public string? InputData { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
}

/// <summary><c>guest-exec-status</c>'s arguments: the pid <c>guest-exec</c> returned.</summary>
internal sealed record GuestExecStatusArguments(long Pid);

/// <summary><c>guest-file-open</c>'s arguments: the guest path and an fopen mode (<c>r</c>, <c>w</c>).</summary>
internal sealed record GuestFileOpenArguments(string Path, string Mode);

/// <summary>
/// <c>guest-file-write</c>'s arguments: the handle and one chunk as base64. The member is named explicitly, because
/// the kebab-case policy is not the place to decide where a word ends in <c>b64</c>.
/// </summary>
internal sealed record GuestFileWriteArguments(long Handle, [property: JsonPropertyName("buf-b64")] string BufB64);

/// <summary><c>guest-file-read</c>'s arguments: the handle and the most bytes one reply may carry.</summary>
internal sealed record GuestFileReadArguments(long Handle, int Count);

/// <summary>The arguments of the file commands that name only the handle: <c>guest-file-flush</c> and <c>guest-file-close</c>.</summary>
internal sealed record GuestFileHandleArguments(long Handle);

/// <summary><c>guest-shutdown</c>'s arguments: <c>powerdown</c>, <c>reboot</c> or <c>halt</c>.</summary>
internal sealed record GuestShutdownArguments(string Mode);

/// <summary>
/// <c>guest-sync-delimited</c>'s arguments: the random id the agent echoes, by which the reply to this handshake is
/// told from replies to commands abandoned earlier.
/// </summary>
internal sealed record GuestSyncArguments(long Id);
