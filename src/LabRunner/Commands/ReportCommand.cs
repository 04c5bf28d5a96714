using System.CommandLine;
using LabKernel;
using LabRunner.Notebooks;
using LabRunner.Reporting;

namespace LabRunner.Commands;

/// <summary>
/// <c>lab report EXECUTED.ipynb [-o REPORT.html] [--no-input] [--no-prompt]</c>: the HTML report of a notebook run
/// earlier, as <c>jupyter nbconvert --to html</c> makes one: beside the input as NAME.html unless <c>-o</c> says
/// where, without code (<c>--no-input</c>) or prompts (<c>--no-prompt</c>) when asked.
/// </summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("EXECUTED") { Description = "An executed notebook (.ipynb).", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o") { HelpName = "REPORT.html", Description = "The HTML report to write. Default: EXECUTED.html beside the notebook." };
        var noInput = new Option<bool>("--no-input") { Description = "Leave out the code of code cells; keep their outputs (as nbconvert's --no-input)." };
        var noPrompt = new Option<bool>("--no-prompt") { Description = "Leave out the [N] execution prompts (as nbconvert's --no-prompt)." };
        var cmd = new Command("report", "Write the standalone HTML report of an executed notebook (works offline).") { input, output, noInput, noPrompt };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction((parse, _) =>
        {
            try
            {
                if (parse.Errors.Count > 0)
                {
                    throw new LabUsageException(parse.Errors[0].Message);
                }
                if (parse.UnmatchedTokens.Count > 0)
                {
                    throw new LabUsageException($"report: unexpected argument {parse.UnmatchedTokens[0]}");
                }
                var path = parse.GetValue(input) ?? throw new LabUsageException("report: EXECUTED.ipynb is required");
                var target = parse.GetValue(output) ?? DefaultReportPath(path);
                if (!File.Exists(path))
                {
                    throw new LabUsageException($"{path}: no such file");
                }
                if (!path.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase))
                {
                    throw new LabUsageException($"{path}: lab report reads executed .ipynb notebooks");
                }
                var notebook = NotebookReader.Read(path);
                notebook.EnsureCellIds();
                HtmlReport.Write(notebook, target, new ReportOptions { NoInput = parse.GetValue(noInput), NoPrompt = parse.GetValue(noPrompt) });
                Console.Error.WriteLine($"lab report: wrote {target}");
                return Task.FromResult(0);
            }
            catch (LabUsageException e)
            {
                Console.Error.WriteLine($"lab: {e.Message}");
                return Task.FromResult(RunExitCodes.UsageError);
            }
        });
        return cmd;
    }

    /// <summary>NAME.html beside NAME.ipynb, as nbconvert names its HTML.</summary>
    internal static string DefaultReportPath(string notebook) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(notebook))!, Path.GetFileNameWithoutExtension(notebook) + ".html");
}
