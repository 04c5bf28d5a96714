using System.Diagnostics;
using System.Text;
using LabKernel.Journal;

namespace LabKernel.Processes;

/// <summary>Options for one run of an external program.</summary>
public sealed record ProcessOptions
{
    /// <summary>Time limit; the process tree is killed when it runs out. Null: no limit.</summary>
    public TimeSpan? Timeout { get; init; } = TimeSpan.FromMinutes(10);

    public string? WorkingDirectory { get; init; }

    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>Bytes written to the program's stdin, then stdin is closed. Null: stdin is closed at once.</summary>
    public byte[]? StandardInput { get; init; }

    /// <summary>Throw <see cref="ProcessFailedException"/> on a non-zero exit code.</summary>
    public bool Check { get; init; } = true;

    /// <summary>Called with each line of stdout as it arrives (progress displays).</summary>
    public Action<string>? OnOutputLine { get; init; }

    /// <summary>Called with each line of stderr as it arrives.</summary>
    public Action<string>? OnErrorLine { get; init; }
}

/// <summary>
/// The one way the lab runs external programs (qemu-img, fio, debootstrap, ssh, ...): an argv array, never a
/// shell string; a time limit; stdout and stderr captured for results and error messages; every run journaled.
/// </summary>
public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        ProcessOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new ProcessOptions();
        var args = arguments.ToList();
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = options.WorkingDirectory ?? "",
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        if (options.Environment is not null)
        {
            foreach (var (k, v) in options.Environment)
            {
                if (v is null)
                {
                    psi.Environment.Remove(k);
                }
                else
                {
                    psi.Environment[k] = v;
                }
            }
        }

        var entry = LabJournal.Current.Begin("process", ShellQuote.Join([fileName, .. args]));
        var sw = Stopwatch.StartNew();
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            entry.Fail(e.Message);
            throw new LabException($"cannot run {fileName}: {e.Message} (is it installed? scripts/setup installs the lab's dependencies)", e);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var outTask = Pump(process.StandardOutput, stdout, options.OnOutputLine);
        var errTask = Pump(process.StandardError, stderr, options.OnErrorLine);
        try
        {
            if (options.StandardInput is { } input)
            {
                await process.StandardInput.BaseStream.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited without reading its input; its exit code tells the story.
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (options.Timeout is { } t)
        {
            limit.CancelAfter(t);
        }
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            entry.Fail("killed");
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw new LabTimeoutException($"`{ShellQuote.Join([fileName, .. args])}` to exit", options.Timeout!.Value);
        }
        await Task.WhenAll(outTask, errTask).ConfigureAwait(false);
        var result = new ProcessResult(fileName, args, process.ExitCode, stdout.ToString(), stderr.ToString(), sw.Elapsed);
        if (result.Succeeded)
        {
            entry.Complete(Summarize(result.StandardOutput));
        }
        else
        {
            entry.Fail($"exit {result.ExitCode}: {Summarize(result.StandardError)}");
        }
        if (options.Check && !result.Succeeded)
        {
            throw new ProcessFailedException(result);
        }
        return result;
    }

    /// <summary>Runs a program and returns its trimmed stdout, throwing on failure.</summary>
    public static async Task<string> OutputAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync(fileName, arguments, new ProcessOptions { Timeout = timeout ?? TimeSpan.FromMinutes(2) }, cancellationToken).ConfigureAwait(false);
        return r.StandardOutput.Trim();
    }

    /// <summary>Finds a program on PATH (or the sbin folders, which root's PATH may lack). Null when absent.</summary>
    public static string? Which(string name)
    {
        if (name.Contains('/'))
        {
            return File.Exists(name) ? name : null;
        }
        var path = (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
        foreach (var dir in path.Distinct())
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Copies a stream exactly into <paramref name="sink"/>, handing complete lines to <paramref name="onLine"/>.</summary>
    internal static async Task Pump(StreamReader reader, StringBuilder sink, Action<string>? onLine)
    {
        var buffer = new char[8192];
        var pending = new StringBuilder();
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            lock (sink)
            {
                sink.Append(buffer, 0, n);
            }
            if (onLine is null)
            {
                continue;
            }
            for (var i = 0; i < n; i++)
            {
                if (buffer[i] == '\n')
                {
                    onLine(pending.ToString().TrimEnd('\r'));
                    pending.Clear();
                }
                else
                {
                    pending.Append(buffer[i]);
                }
            }
        }
        if (onLine is not null && pending.Length > 0)
        {
            onLine(pending.ToString());
        }
    }

    internal static string Summarize(string text)
    {
        var t = text.Trim();
        return t.Length <= 400 ? t : t[..400] + "…";
    }
}
