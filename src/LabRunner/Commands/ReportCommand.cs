using System.CommandLine;
using LabKernel;
using LabRunner.Notebooks;
using LabRunner.Reporting;

namespace LabRunner.Commands;

/// <summary><c>lab report EXECUTED.ipynb -o REPORT.html</c>: the HTML report of a notebook run earlier.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("EXECUTED") { Description = "An executed notebook (.ipynb).", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o") { HelpName = "REPORT.html", Description = "The HTML report to write." };
        var cmd = new Command("report", "Write the standalone HTML report of an executed notebook.") { input, output };
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
                var target = parse.GetValue(output) ?? throw new LabUsageException("report: -o REPORT.html is required");
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
                HtmlReport.Write(notebook, target);
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
}
