using System.Globalization;

namespace LabRunner.Notebooks;

/// <summary>
/// The cells' output log of <c>lab run --log-output</c> (<see cref="NotebookRunner.CellOutputLog"/>), with a line for
/// a cell that runs long without output, so that it does not look hung. On a terminal, a live line rewritten in place
/// once a cell has been quiet for <see cref="LiveAfter"/> (<c>[cell 3] running 42 s: await lab.CheckAsync(...)</c>),
/// erased before the cell's next output and when it ends; otherwise (a file, a pipe, CI) a plain line each
/// <c>plainInterval</c> of silence (<c>[cell 3] still running after 2 min 0 s, no output for 60 s: ...</c>). Every
/// line of the log goes through it, so its lines and the cells' never interleave. Time is read from an injected
/// <see cref="TimeProvider"/>: its timer ticks once a second.
/// </summary>
public sealed class QuietCellProgress : IDisposable
{
    /// <summary>How long a cell is quiet between two plain lines: a modest rate for logs.</summary>
    public static readonly TimeSpan DefaultPlainInterval = TimeSpan.FromSeconds(60);

    /// <summary>How long a cell is quiet before the live line shows (a cell that prints often shows none).</summary>
    public static readonly TimeSpan LiveAfter = TimeSpan.FromSeconds(2);

    /// <summary>Erases the terminal's current line: back to its start, then clear it.</summary>
    internal const string EraseLine = "\r\u001b[2K";

    private const int FirstLineWidth = 60;
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private readonly TextWriter _writer;
    private readonly bool _live;
    private readonly TimeProvider _time;
    private readonly TimeSpan _plainInterval;
    private readonly object _gate = new();
    private ITimer? _timer;
    private int _cell;
    private string _firstLine = "";
    private long _cellStarted;
    private long _lastOutput;
    private long _lastNotice;
    private bool _lineShown;
    private bool _disposed;

    /// <param name="writer">The log (<c>lab run</c>: stderr).</param>
    /// <param name="live">The log is a terminal: one line rewritten in place rather than plain lines.</param>
    /// <param name="time">The clock (the system's if null).</param>
    /// <param name="plainInterval">The silence between two plain lines (<see cref="DefaultPlainInterval"/> if null).</param>
    public QuietCellProgress(TextWriter writer, bool live, TimeProvider? time = null, TimeSpan? plainInterval = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
        _live = live;
        _time = time ?? TimeProvider.System;
        _plainInterval = plainInterval ?? DefaultPlainInterval;
        if (_plainInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(plainInterval), plainInterval, "must be positive");
        }
    }

    /// <summary>Code cell <paramref name="number"/> starts: from now on its silence is timed.</summary>
    public void CellStarted(int number, string firstLine)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            EraseLiveLine();
            _cell = number;
            _firstLine = firstLine.Length > FirstLineWidth ? firstLine[..FirstLineWidth] + "…" : firstLine;
            _cellStarted = _lastOutput = _lastNotice = _time.GetTimestamp();
            _timer ??= _time.CreateTimer(_ => OnTick(), null, Tick, Tick);
        }
    }

    /// <summary>A line of the running cell's output (the live line erased first).</summary>
    public void WriteLine(string line)
    {
        lock (_gate)
        {
            EraseLiveLine();
            _writer.WriteLine(line);
            _lastOutput = _time.GetTimestamp();
        }
    }

    public void Flush()
    {
        lock (_gate)
        {
            _writer.Flush();
        }
    }

    /// <summary>The running cell ended: its live line is erased, and no more lines are written until the next starts.</summary>
    public void CellFinished()
    {
        lock (_gate)
        {
            EraseLiveLine();
            _cell = 0;
            _writer.Flush();
        }
    }

    public void Dispose()
    {
        ITimer? timer;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            EraseLiveLine();
            _cell = 0;
            timer = _timer;
            _timer = null;
        }
        timer?.Dispose();
    }

    private void OnTick()
    {
        lock (_gate)
        {
            if (_disposed || _cell == 0)
            {
                return;
            }
            var now = _time.GetTimestamp();
            var running = _time.GetElapsedTime(_cellStarted, now);
            var quiet = _time.GetElapsedTime(_lastOutput, now);
            if (_live)
            {
                if (quiet >= LiveAfter)
                {
                    _writer.Write($"{EraseLine}[cell {_cell}] running {Duration(running)}: {_firstLine}");
                    _writer.Flush();
                    _lineShown = true;
                }
            }
            else if (_time.GetElapsedTime(Math.Max(_lastOutput, _lastNotice), now) >= _plainInterval)
            {
                _writer.WriteLine($"[cell {_cell}] still running after {Duration(running)}, no output for {Duration(quiet)}: {_firstLine}");
                _writer.Flush();
                _lastNotice = now;
            }
        }
    }

    private void EraseLiveLine()
    {
        if (_lineShown)
        {
            _writer.Write(EraseLine);
            _lineShown = false;
        }
    }

    /// <summary>"42 s", "2 min 5 s", "1 h 3 min": whole seconds, as a reader counts a wait.</summary>
    internal static string Duration(TimeSpan elapsed)
    {
        var s = (long)elapsed.TotalSeconds;
        return s < 60 ? string.Create(CultureInfo.InvariantCulture, $"{s} s")
            : s < 3600 ? string.Create(CultureInfo.InvariantCulture, $"{s / 60} min {s % 60} s")
            : string.Create(CultureInfo.InvariantCulture, $"{s / 3600} h {s % 3600 / 60} min");
    }
}
