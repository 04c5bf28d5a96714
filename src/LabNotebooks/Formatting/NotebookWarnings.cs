using System.Runtime.CompilerServices;
using LabKernel.Host;

namespace LabNotebooks;

/// <summary>
/// Shows LabKernel's warnings (<see cref="LabWarnings"/>) on the notebook's stderr when no host listens for them
/// (VS Code's kernel); under <c>lab run</c> the <c>lab</c> program already does.
/// </summary>
internal static class NotebookWarnings
{
    // A library module initializer on purpose: LabKernel's warnings must have a reader as soon as a notebook loads LabNotebooks.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Install()
    {
        if (!LabWarnings.HasListeners)
        {
            LabWarnings.Raised += message => Console.Error.WriteLine("lab: " + message);
        }
    }
}
