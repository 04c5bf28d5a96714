namespace LabKernel.Qmp;

/// <summary>
/// QEMU answered a QMP command with an error: <c>{"error": {"class": ..., "desc": ...}}</c>. Callers tell errors
/// apart by <see cref="ErrorClass"/> (and, where QEMU only says <c>GenericError</c>, by <see cref="Description"/>
/// for a known <see cref="CommandName"/>), never by the message.
/// </summary>
public sealed class QmpErrorException : LabException
{
    public QmpErrorException(string errorClass, string description, string command)
        : base($"QMP {NameOf(command)} failed: {description} ({errorClass})")
    {
        ErrorClass = errorClass;
        Description = description;
        Command = command;
        CommandName = NameOf(command);
    }

    /// <summary>QMP error class (<c>error.class</c>): <c>GenericError</c>, <c>DeviceNotFound</c>, <c>DeviceNotActive</c>, <c>CommandNotFound</c>, ...</summary>
    public string ErrorClass { get; }

    /// <summary>QEMU's human-readable text (<c>error.desc</c>).</summary>
    public string Description { get; }

    /// <summary>The command as sent, JSON.</summary>
    public string Command { get; }

    /// <summary>The command's name (its <c>execute</c> member), e.g. <c>blockdev-del</c>.</summary>
    public string CommandName { get; }

    private static string NameOf(string json)
    {
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(json)?["execute"]?.GetValue<string>() ?? json;
        }
        catch (System.Text.Json.JsonException)
        {
            return json;
        }
    }
}

/// <summary>The QMP connection is gone (QEMU exited or closed the socket); pending and later calls fail with it.</summary>
public sealed class QmpDisconnectedException : LabException
{
    public QmpDisconnectedException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>QEMU sent something that is not QMP.</summary>
public sealed class QmpProtocolException : LabException
{
    public QmpProtocolException(string message) : base(message) { }
}
