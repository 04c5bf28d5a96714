using System.Diagnostics;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace LabRunner.Notebooks;

/// <summary>Reports a run as it goes: a live display on a terminal, plain lines otherwise.</summary>
public interface IRunProgress : IAsyncDisposable
{
    void Begin(string notebook, int codeCells);

    void CellStarted(int number, string firstLine);

    void CellFinished(int number, string status, TimeSpan duration, string? detail = null);

    void Note(string text);
}

/// <summary>No progress at all.</summary>
public sealed class SilentProgress : IRunProgress
{
    public void Begin(string notebook, int codeCells) { }

    public void CellStarted(int number, string firstLine) { }

    public void CellFinished(int number, string status, TimeSpan duration, string? detail = null) { }

    public void Note(string text) { }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>One line per finished cell ("[3/21] ok 0.12 s  var x = 1;"), for logs and pipes.</summary>
public sealed class PlainProgress(TextWriter writer) : IRunProgress
{
    private int _total;

    public void Begin(string notebook, int codeCells)
    {
        _total = codeCells;
        writer.WriteLine($"lab run: {notebook} ({codeCells} code cells)");
    }

    public void CellStarted(int number, string firstLine) { }

    public void CellFinished(int number, string status, TimeSpan duration, string? detail = null) =>
        writer.WriteLine($"[{number}/{_total}] {status,-8} {duration.TotalSeconds,7:0.00} s{(detail is null ? "" : "  " + detail)}");

    public void Note(string text) => writer.WriteLine($"lab run: {text}");

    public ValueTask DisposeAsync()
    {
        writer.Flush();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A Spectre.Console live display: cell N of M, elapsed time, the running cell's first line.</summary>
public sealed class LiveProgress : IRunProgress
{
    private readonly IAnsiConsole _console;
    private readonly object _gate = new();
    private readonly Stopwatch _elapsed = Stopwatch.StartNew();
    private readonly Stopwatch _cell = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _finished = [];
    private Task? _loop;
    private string _notebook = "";
    private int _total;
    private int _current;
    private string _firstLine = "";
    private string? _note;
    private int _disposed;

    public LiveProgress(IAnsiConsole console)
    {
        _console = console;
    }

    public void Begin(string notebook, int codeCells)
    {
        _notebook = notebook;
        _total = codeCells;
        _loop = _console.Live(Render()).AutoClear(false).StartAsync(async ctx =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    ctx.UpdateTarget(Render());
                }
            }
            catch (OperationCanceledException)
            {
            }
            ctx.UpdateTarget(Render());
        });
    }

    public void CellStarted(int number, string firstLine)
    {
        lock (_gate)
        {
            _current = number;
            _firstLine = firstLine.Length > 70 ? firstLine[..70] + "…" : firstLine;
            _cell.Restart();
        }
    }

    public void CellFinished(int number, string status, TimeSpan duration, string? detail = null)
    {
        lock (_gate)
        {
            var color = status switch { "ok" => "green", "skipped" => "grey", "timeout" => "yellow", _ => "red" };
            _finished.Add($"[{color}]{Markup.Escape(status),-8}[/] {number,3}/{_total} {duration.TotalSeconds,6:0.00} s {Markup.Escape(detail ?? "")}");
            if (_finished.Count > 8)
            {
                _finished.RemoveAt(0);
            }
            _firstLine = "";
            _cell.Reset();
        }
    }

    public void Note(string text)
    {
        lock (_gate)
        {
            _note = text;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        _stop.Dispose();
    }

    private IRenderable Render()
    {
        lock (_gate)
        {
            var rows = new List<IRenderable>
            {
                new Markup($"[bold]lab run[/] {Markup.Escape(_notebook)}  cell [bold]{_current}[/] of {_total}  elapsed {_elapsed.Elapsed.TotalSeconds:0.0} s"),
            };
            rows.AddRange(_finished.Select(f => new Markup(f)));
            if (_firstLine.Length > 0)
            {
                rows.Add(new Markup($"[blue]running[/]  {_current,3}/{_total} {_cell.Elapsed.TotalSeconds,6:0.0} s [grey]{Markup.Escape(_firstLine)}[/]"));
            }
            if (_note is not null)
            {
                rows.Add(new Markup($"[grey]{Markup.Escape(_note)}[/]"));
            }
            return new Rows(rows);
        }
    }
}
