namespace LabRunner.Notebooks.Scripting;

/// <summary>
/// What a .csx sees as globals under <c>lab run</c>, as under dotnet-script: <c>Args</c>, the arguments after
/// <c>--</c>. Nothing else, so a script that runs here runs under dotnet-script too.
/// </summary>
public sealed class ScriptGlobals
{
    internal ScriptGlobals(IReadOnlyList<string> args)
    {
        Args = args.ToList();
    }

    /// <summary>The arguments after <c>--</c> on the <c>lab run</c> command line.</summary>
    public IList<string> Args { get; }
}
