using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using LabKernel;
using LabRunner.Notebooks;
using LabRunner.Reporting;
using Spectre.Console;

namespace LabRunner.Commands;

/// <summary>
/// <c>lab run IN [OUT] [-p NAME VALUE]... [-y YAML]... [-f FILE]... [--prepare-only] [--log-output] [--report R.html]
/// [--allow-errors] [--timeout S] [--cell-timeout S] [--cwd DIR] [--no-progress] [-- ARGS]</c>, and the hidden
/// <c>lab __kernel</c> that runs the cells. Exit codes (<see cref="RunExitCodes"/>): 0 every cell succeeded (or
/// <c>--prepare-only</c> wrote its notebook), 1 a cell failed, 2 usage or input error, 3 time limit, 4 every cell ran
/// but a finding was refuted that the notebook did not declare expected, 130 Ctrl-C (SIGINT), 143 SIGTERM.
/// </summary>
internal static class RunCommand
{

    /// <summary>Adds run, report and the hidden kernel command to the lab command line.</summary>
    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(CreateKernel());
    }

    public static Command Create()
    {
        // These describe the command line for --help. RunArguments reads it: System.CommandLine's -p would take every
        // token after it (INPUT and OUT too), so it is declared here to take any number and never fail.
        var input = new Argument<string>("IN") { Description = "The notebook: .ipynb, .dib or .csx.", Arity = ArgumentArity.ZeroOrOne };
        var outputArgument = new Argument<string>("OUT") { Description = "The executed notebook (.ipynb), as papermill's OUTPUT_PATH. Default: IN.executed.ipynb next to the input (none for .csx).", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o") { HelpName = "OUT.ipynb", Description = "The executed notebook, as the OUT argument." };
        var parameters = new Option<string[]>("--parameters", "-p", "--parameter")
        {
            HelpName = "NAME VALUE",
            Description = "Set a parameter (repeatable, anywhere on the line). VALUE is typed by the parameters cell (int, double, bool, string, TimeSpan in seconds, or JSON).",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = true,
        };
        var yaml = new Option<string[]>("--parameters-yaml", "-y", "--parameters_yaml") { HelpName = "YAML", Description = "Parameters as a YAML mapping, e.g. -y 'points: 60' (repeatable)." };
        var file = new Option<string[]>("--parameters-file", "-f", "--parameters_file") { HelpName = "FILE", Description = "Parameters from a YAML file (repeatable). Later sources win, as in papermill: -f, then -y, then -p." };
        var prepareOnly = new Option<bool>("--prepare-only") { Description = "Write OUT with the parameters injected and run nothing (exit 0)." };
        var logOutput = new Option<bool>("--log-output") { Description = "Write each cell's output to stderr as it comes, each line prefixed with the cell's number." };
        var report = new Option<string>("--report") { HelpName = "REPORT.html", Description = "Write a standalone HTML report." };
        var allowErrors = new Option<bool>("--allow-errors") { Description = "Run every cell even after one fails (the exit code is still 1)." };
        var timeout = new Option<string>("--timeout") { HelpName = "SECONDS", Description = "Time limit for the whole run, in seconds (exit code 3)." };
        var cellTimeout = new Option<string>("--cell-timeout") { HelpName = "SECONDS", Description = "Time limit for each cell, in seconds (exit code 3)." };
        var cwd = new Option<string>("--cwd") { HelpName = "DIR", Description = "Working directory of the notebook code (default: the notebook's folder)." };
        var noProgress = new Option<bool>("--no-progress") { Description = "No live display; plain lines only." };

        var cmd = new Command("run", "Run a notebook (.ipynb, .dib, .csx) and write the executed notebook and an HTML report. "
            + "Exit codes: 0 ok, 1 a cell failed, 2 usage or input error, 3 time limit, 4 a finding refuted that the notebook did not declare expected, 130 SIGINT, 143 SIGTERM.")
        {
            input, outputArgument, output, parameters, yaml, file, prepareOnly, logOutput, report, allowErrors, timeout, cellTimeout, cwd, noProgress,
        };
        // Usage errors must exit with 2 and one line, so this command reads its own arguments (RunArguments).
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(async (parse, ct) =>
        {
            // First, before the kernel process exists: from here on Ctrl-C and SIGTERM stop the run in order (the
            // kernel and its guests stopped, the notebook so far written). LabCli leaves these signals to it.
            using var interruption = RunInterruption.Listen();
            try
            {
                if (parse.Errors.Count > 0)
                {
                    throw new LabUsageException(parse.Errors[0].Message);
                }
                var args = RunArguments.Parse(TokensAfterCommand(parse));
                var path = args.Input ?? throw new LabUsageException("run: IN is required (a .ipynb, .dib or .csx file)");
                var options = new RunOptions
                {
                    InputPath = path,
                    OutputPath = args.OutputPath,
                    OutputOrigin = args.Output is not null ? "OUT" : "-o",
                    ReportPath = args.Report,
                    Parameters = ParameterSources.Merge(args.ParameterFiles, args.YamlParameters, args.Parameters),
                    PrepareOnly = args.PrepareOnly,
                    AllowErrors = args.AllowErrors,
                    Timeout = Seconds(args.Timeout, "--timeout"),
                    CellTimeout = Seconds(args.CellTimeout, "--cell-timeout"),
                    WorkingDirectory = args.WorkingDirectory,
                    ScriptArguments = args.ScriptArguments,
                };
                var isScript = path.EndsWith(".csx", StringComparison.OrdinalIgnoreCase);
                var runner = new NotebookRunner
                {
                    ScriptOut = isScript ? Console.Out : null,
                    ScriptError = isScript ? Console.Error : null,
                    // A .csx's output already goes to the terminal as it comes.
                    CellOutputLog = args.LogOutput && !isScript ? Console.Error : null,
                    // A quiet cell's progress: a live line on a terminal, a plain line each minute in a log.
                    CellOutputLogIsTerminal = !Console.IsErrorRedirected,
                    Interruption = interruption,
                    WriteReport = (notebook, path) => HtmlReport.Write(notebook, path),
                };
                // Cell output on stderr and a live display there would overwrite each other: plain lines then.
                await using var progress = CreateProgress(args.NoProgress || args.LogOutput, isScript);
                var outcome = await runner.RunAsync(options, progress, ct).ConfigureAwait(false);
                await progress.DisposeAsync().ConfigureAwait(false);
                if (!isScript || options.PrepareOnly)
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

    /// <summary>The command line after <c>run</c>, token by token as the user wrote it.</summary>
    private static List<string> TokensAfterCommand(ParseResult parse)
    {
        var tokens = parse.Tokens.Select(t => t.Value).ToList();
        var at = parse.Tokens.ToList().FindIndex(t => t.Type == TokenType.Command && t.Value == "run");
        return at < 0 ? tokens : tokens[(at + 1)..];
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
        var cmd = new Command(KernelClient.KernelCommandName, "Internal: the notebook kernel process of `lab run` (JSON lines on stdin/stdout).") { Hidden = true };
        cmd.SetAction((_, _) => KernelHost.RunAsync());
        return cmd;
    }
}
