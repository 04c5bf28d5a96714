namespace LabKernel.Qmp;

/// <summary>QEMU answered a QMP command with an error.</summary>
public sealed class QmpErrorException : LabException
{
    public QmpErrorException(string errorClass, string description, string command)
        : base($"QMP {CommandName(command)} failed: {description} ({errorClass})")
    {
        ErrorClass = errorClass;
        Description = description;
        Command = command;
    }

    /// <summary>QMP error class, e.g. <c>GenericError</c>, <c>DeviceNotFound</c>.</summary>
    public string ErrorClass { get; }

    public string Description { get; }

    /// <summary>The command as sent, JSON.</summary>
    public string Command { get; }

    private static string CommandName(string json)
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
