using LabKernel;

namespace LabRunner.Commands;

/// <summary>
/// The command line of <c>lab run</c>, read the way papermill reads its own: <c>lab run IN [OUT]</c> with options
/// anywhere on the line, before or after IN. <c>-p NAME VALUE</c> takes exactly the two tokens after it, whatever
/// they look like (<c>-p offset -5</c>); every token after <c>--</c> is an argument of a .csx script. A third
/// positional argument is an error, not a script argument. System.CommandLine describes the options for
/// <c>lab run --help</c>; this reads them, so that the line means one thing whatever the order.
/// </summary>
internal sealed record RunArguments
{
    public string? Input { get; private set; }

    /// <summary>The second positional argument: the executed notebook, as papermill's OUTPUT_PATH.</summary>
    public string? Output { get; private set; }

    /// <summary><c>-o OUT</c>, the older spelling of <see cref="Output"/>.</summary>
    public string? OutputOption { get; private set; }

    public List<(string Name, string Value)> Parameters { get; } = [];

    /// <summary><c>-y YAML</c> strings, in the order given.</summary>
    public List<string> YamlParameters { get; } = [];

    /// <summary><c>-f FILE</c> YAML files, in the order given.</summary>
    public List<string> ParameterFiles { get; } = [];

    public string? Report { get; private set; }

    public bool AllowErrors { get; private set; }

    public string? Timeout { get; private set; }

    public string? CellTimeout { get; private set; }

    public string? WorkingDirectory { get; private set; }

    public bool NoProgress { get; private set; }

    public bool PrepareOnly { get; private set; }

    public bool LogOutput { get; private set; }

    public List<string> ScriptArguments { get; } = [];

    /// <summary>The output notebook asked for, by either spelling (both at once is an error).</summary>
    public string? OutputPath => Output ?? OutputOption;

    internal static readonly string[] OutputAliases = ["-o", "--output"];
    internal static readonly string[] ParameterAliases = ["-p", "--parameters", "--parameter"];
    internal static readonly string[] YamlAliases = ["-y", "--parameters-yaml", "--parameters_yaml"];
    internal static readonly string[] FileAliases = ["-f", "--parameters-file", "--parameters_file"];

    /// <summary>Reads the tokens after <c>run</c>. Throws <see cref="LabUsageException"/> (one line) for anything it cannot use.</summary>
    public static RunArguments Parse(IReadOnlyList<string> tokens)
    {
        var a = new RunArguments();
        var i = 0;
        string Value(string option)
        {
            if (i + 1 >= tokens.Count)
            {
                throw new LabUsageException($"run: {option} needs a value (see lab run --help)");
            }
            return tokens[++i];
        }
        for (; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token == "--")
            {
                a.ScriptArguments.AddRange(tokens.Skip(i + 1));
                break;
            }
            // --name=value, as System.CommandLine and click both accept.
            var (name, inline) = token.StartsWith("--", StringComparison.Ordinal) && token.IndexOf('=', StringComparison.Ordinal) is > 2 and var eq
                ? (token[..eq], token[(eq + 1)..])
                : (token, (string?)null);
            string Next(string option) => inline ?? Value(option);
            switch (name)
            {
                case var _ when ParameterAliases.Contains(name):
                    if (inline is not null)
                    {
                        throw new LabUsageException($"run: {name} takes a NAME and a VALUE as two arguments: {name} NAME VALUE");
                    }
                    if (i + 2 >= tokens.Count)
                    {
                        throw new LabUsageException(i + 1 < tokens.Count
                            ? $"run: {name} takes a NAME and a VALUE; '{tokens[i + 1]}' has no value"
                            : $"run: {name} takes a NAME and a VALUE (see lab run --help)");
                    }
                    a.Parameters.Add((tokens[i + 1], tokens[i + 2]));
                    i += 2;
                    break;
                case var _ when YamlAliases.Contains(name):
                    a.YamlParameters.Add(Next(name));
                    break;
                case var _ when FileAliases.Contains(name):
                    a.ParameterFiles.Add(Next(name));
                    break;
                case var _ when OutputAliases.Contains(name):
                    a.OutputOption = Once(a.OutputOption, name, Next(name));
                    break;
                case "--report":
                    a.Report = Once(a.Report, name, Next(name));
                    break;
                case "--timeout":
                    a.Timeout = Once(a.Timeout, name, Next(name));
                    break;
                case "--cell-timeout":
                    a.CellTimeout = Once(a.CellTimeout, name, Next(name));
                    break;
                case "--cwd":
                    a.WorkingDirectory = Once(a.WorkingDirectory, name, Next(name));
                    break;
                case "--allow-errors":
                    a.AllowErrors = Flag(name, inline);
                    break;
                case "--no-progress":
                    a.NoProgress = Flag(name, inline);
                    break;
                case "--prepare-only":
                    a.PrepareOnly = Flag(name, inline);
                    break;
                case "--log-output":
                    a.LogOutput = Flag(name, inline);
                    break;
                case var _ when token.Length > 1 && token.StartsWith('-'):
                    throw new LabUsageException($"run: unknown option {token} (see lab run --help)");
                default:
                    if (a.Input is null)
                    {
                        a.Input = token;
                    }
                    else if (a.Output is null)
                    {
                        a.Output = token;
                    }
                    else
                    {
                        throw new LabUsageException($"run: unexpected argument '{token}': lab run takes IN and OUT; a script's arguments go after --");
                    }
                    break;
            }
        }
        if (a.Output is not null && a.OutputOption is not null)
        {
            throw new LabUsageException($"run: the output notebook is given twice ({a.Output} and -o {a.OutputOption}): give one");
        }
        return a;
    }

    private static string Once(string? current, string option, string value) =>
        current is null ? value : throw new LabUsageException($"run: {option} is given twice ({current}, {value})");

    private static bool Flag(string option, string? inline) => inline switch
    {
        null or "true" => true,
        "false" => false,
        _ => throw new LabUsageException($"run: {option} takes no value (got '{inline}')"),
    };
}
