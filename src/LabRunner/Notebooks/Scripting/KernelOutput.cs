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
    private readonly TextWriter _protocol;
    private readonly object _gate = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Timer _timer;

    public KernelOutput(TextWriter protocol)
    {
        _protocol = protocol;
        Out = new CaptureWriter(this, _stdout);
        Error = new CaptureWriter(this, _stderr);
        _timer = new Timer(_ => Flush(), null, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(200));
    }

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
