using System.Text;
using System.Text.Json.Nodes;

namespace LabRunner.Notebooks.Scripting;

/// <summary>
/// The kernel process's side of the protocol: writes messages to the parent, and collects what cells print to
/// Console.Out and Console.Error, sending it as <c>stream</c> messages (before every display, at the end of the
/// cell, and every 200 ms so a cell killed for its time limit keeps what it printed).
/// </summary>
internal sealed class KernelOutput : IDisposable
{
    private static KernelOutput? _current;
    private readonly TextWriter _protocol;
    private readonly object _gate = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Timer _timer;
    private int _displays;

    public KernelOutput(TextWriter protocol)
    {
        _protocol = protocol;
        Out = new CaptureWriter(this, _stdout);
        Error = new CaptureWriter(this, _stderr);
        _timer = new Timer(_ => Flush(), null, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(200));
        _current = this;
    }

    /// <summary>The output of this kernel process; outside one (tests, VS Code) displays go nowhere.</summary>
    public static KernelOutput Current => _current ?? throw new InvalidOperationException("display() is available in notebooks run by `lab run`");

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    public void Send(JsonObject message)
    {
        lock (_gate)
        {
            _protocol.Write(KernelProtocol.Serialize(message));
            _protocol.Write('\n');
            _protocol.Flush();
        }
    }

    public DisplayedValue Display(object? value, string[] mimeTypes)
    {
        var id = $"display-{Interlocked.Increment(ref _displays)}";
        var shown = new DisplayedValue(id, mimeTypes);
        Flush();
        Send(new JsonObject
        {
            ["type"] = KernelProtocol.Display,
            ["displayId"] = id,
            ["data"] = DisplayFormatter.Format(value, mimeTypes),
        });
        return shown;
    }

    public void Update(DisplayedValue shown, object? value)
    {
        Flush();
        Send(new JsonObject
        {
            ["type"] = KernelProtocol.Display,
            ["displayId"] = shown.DisplayId,
            ["update"] = true,
            ["data"] = DisplayFormatter.Format(value, shown.MimeTypes),
        });
    }

    /// <summary>Sends what the cell printed since the last flush.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            foreach (var (name, buffer) in new[] { ("stdout", _stdout), ("stderr", _stderr) })
            {
                if (buffer.Length > 0)
                {
                    var text = buffer.ToString();
                    buffer.Clear();
                    Send(new JsonObject { ["type"] = KernelProtocol.Stream, ["name"] = name, ["text"] = text });
                }
            }
        }
    }

    public void Dispose() => _timer.Dispose();

    private sealed class CaptureWriter(KernelOutput owner, StringBuilder buffer) : TextWriter
    {
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (owner._gate)
            {
                buffer.Append(value);
            }
        }

        public override void Write(string? value)
        {
            lock (owner._gate)
            {
                buffer.Append(value);
            }
        }

        public override void Write(char[] buffer1, int index, int count)
        {
            lock (owner._gate)
            {
                buffer.Append(buffer1, index, count);
            }
        }
    }
}
