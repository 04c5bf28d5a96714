using System.CommandLine;
using System.Globalization;
using LabKernel;
using LabRunner.Notebooks;
using Spectre.Console;

namespace LabRunner.Commands;

/// <summary>
/// <c>lab run INPUT [-o OUT.ipynb] [-p NAME VALUE]... [--report R.html] [--allow-errors] [--timeout S]
/// [--cell-timeout S] [--cwd DIR] [--no-progress] [-- ARGS]</c>, and the hidden <c>lab __kernel</c> that runs
/// the cells. Exit codes: 0 every cell succeeded, 1 a cell failed, 2 usage or input error, 3 time limit, 130 Ctrl-C
/// (SIGINT), 143 SIGTERM.
/// </summary>
internal static class RunCommand
{
    public const string KernelCommandName = "__kernel";

    /// <summary>Adds run, report and the hidden kernel command to the lab command line.</summary>
    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(CreateKernel());
    }

    public static Command Create()
    {
        var input = new Argument<string>("INPUT") { Description = "The notebook: .ipynb, .dib or .csx.", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o") { HelpName = "OUTPUT.ipynb", Description = "The executed notebook (.ipynb). Default: INPUT.executed.ipynb next to the input (none for .csx)." };
        var parameters = new Option<string[]>("--parameter", "-p")
        {
            HelpName = "NAME VALUE",
            Description = "Set a parameter: -p NAME VALUE (repeatable). VALUE is typed by the parameters cell (int, double, bool, string, or JSON).",
            Arity = new ArgumentArity(2, ArgumentArity.ZeroOrMore.MaximumNumberOfValues),
            AllowMultipleArgumentsPerToken = true,
        };
        var report = new Option<string>("--report") { HelpName = "REPORT.html", Description = "Write a standalone HTML report." };
        var allowErrors = new Option<bool>("--allow-errors") { Description = "Run every cell even after one fails (the exit code is still 1)." };
        var timeout = new Option<string>("--timeout") { HelpName = "SECONDS", Description = "Time limit for the whole run, in seconds (exit code 3)." };
        var cellTimeout = new Option<string>("--cell-timeout") { HelpName = "SECONDS", Description = "Time limit for each cell, in seconds (exit code 3)." };
        var cwd = new Option<string>("--cwd") { HelpName = "DIR", Description = "Working directory of the notebook code (default: the notebook's folder)." };
        var noProgress = new Option<bool>("--no-progress") { Description = "No live display; plain lines only." };

        var cmd = new Command("run", "Run a notebook (.ipynb, .dib, .csx) and write the executed notebook and an HTML report.")
        {
            input, output, parameters, report, allowErrors, timeout, cellTimeout, cwd, noProgress,
        };
        // Usage errors must exit with 2 and one line, so this command checks its own arguments. Tokens no option
        // takes (those after `--` in particular) are the .csx's Args; a positional ARGS argument would instead
        // take the VALUE of `-p NAME VALUE`.
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(async (parse, ct) =>
        {
            // First, before the kernel process exists: from here on Ctrl-C and SIGTERM stop the run in order (the
            // kernel and its guests stopped, the notebook so far written). LabCli leaves these signals to it.
            using var interruption = RunInterruption.Listen();
            try
            {
                var dashDash = parse.Tokens.Any(t => t.Value == "--");
                var unknown = dashDash ? [] : parse.UnmatchedTokens.Where(t => t.StartsWith('-') && t.Length > 1).ToList();
                if (parse.Errors.Count > 0)
                {
                    throw new LabUsageException(parse.Errors[0].Message);
                }
                if (unknown.Count > 0)
                {
                    throw new LabUsageException($"run: unknown option {unknown[0]} (see lab run --help)");
                }
                var path = parse.GetValue(input) ?? throw new LabUsageException("run: INPUT is required (a .ipynb, .dib or .csx file)");
                if (path.StartsWith('-') && !File.Exists(path))
                {
                    throw new LabUsageException($"run: unknown option {path} (see lab run --help)");
                }
                var values = parse.GetValue(parameters) ?? [];
                if (values.Length % 2 != 0)
                {
                    throw new LabUsageException("run: -p takes a NAME and a VALUE (put INPUT before the -p options)");
                }
                var options = new RunOptions
                {
                    InputPath = path,
                    OutputPath = parse.GetValue(output),
                    ReportPath = parse.GetValue(report),
                    Parameters = [.. values.Chunk(2).Select(p => (p[0], p[1]))],
                    AllowErrors = parse.GetValue(allowErrors),
                    Timeout = Seconds(parse.GetValue(timeout), "--timeout"),
                    CellTimeout = Seconds(parse.GetValue(cellTimeout), "--cell-timeout"),
                    WorkingDirectory = parse.GetValue(cwd),
                    ScriptArguments = [.. parse.UnmatchedTokens],
                };
                var isScript = path.EndsWith(".csx", StringComparison.OrdinalIgnoreCase);
                var runner = new NotebookRunner
                {
                    ScriptOut = isScript ? Console.Out : null,
                    ScriptError = isScript ? Console.Error : null,
                    Interruption = interruption,
                };
                await using var progress = CreateProgress(parse.GetValue(noProgress), isScript);
                var outcome = await runner.RunAsync(options, progress, ct).ConfigureAwait(false);
                await progress.DisposeAsync().ConfigureAwait(false);
                if (!isScript)
                {
                    var files = string.Join(", ", new[] { outcome.OutputPath, outcome.ReportPath }.OfType<string>());
                    await Console.Error.WriteLineAsync($"lab run: {outcome.Status} (exit {outcome.ExitCode}){(files.Length > 0 ? "; wrote " + files : "")}").ConfigureAwait(false);
                }
                return outcome.ExitCode;
            }
            catch (LabUsageException e)
            {
                await Console.Error.WriteLineAsync($"lab: {e.Message}").ConfigureAwait(false);
                return RunExitCodes.UsageError;
            }
            catch (LabException e)
            {
                await Console.Error.WriteLineAsync($"lab: {e.Message}").ConfigureAwait(false);
                return RunExitCodes.CellFailed;
            }
        });
        return cmd;
    }

    private static IRunProgress CreateProgress(bool noProgress, bool isScript)
    {
        if (isScript)
        {
            // A script's own output goes to the terminal, as with dotnet-script.
            return new SilentProgress();
        }
        if (noProgress || Console.IsErrorRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            return new PlainProgress(Console.Error);
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return new LiveProgress(console);
    }

    private static TimeSpan? Seconds(string? text, string option)
    {
        if (text is null)
        {
            return null;
        }
        // TimeSpan.MaxValue is about 29,000 years; beyond it FromSeconds throws OverflowException.
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) || !(s > 0) || !(s < TimeSpan.MaxValue.TotalSeconds))
        {
            throw new LabUsageException($"{option} {text}: expected a positive number of seconds");
        }
        return TimeSpan.FromSeconds(s);
    }

    private static Command CreateKernel()
    {
        var cmd = new Command(KernelCommandName, "Internal: the notebook kernel process of `lab run` (JSON lines on stdin/stdout).") { Hidden = true };
        cmd.SetAction((_, _) => KernelHost.RunAsync());
        return cmd;
    }
}
