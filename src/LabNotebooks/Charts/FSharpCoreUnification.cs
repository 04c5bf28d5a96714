using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace LabNotebooks;

/// <summary>
/// Lets Plotly.NET run in a host that already loaded an older FSharp.Core of the same major version.
/// </summary>
/// <remarks>
/// Plotly.NET 6.0.0 is built against FSharp.Core 10.1 (assembly version 10.1.0.0). The .NET Interactive tool
/// behind VS Code's Polyglot Notebooks (1.0.712001, the final release) loads its own FSharp.Core 10.0.0.0 at start
/// for its F# kernel, and a process cannot load a second FSharp.Core into the default context, so the first chart
/// fails with "Could not load file or assembly 'FSharp.Core, Version=10.1.0.0'". When the default context cannot
/// find the FSharp.Core asked for and one with the same major version is loaded, this hands that one out, as a
/// binding redirect would on .NET Framework. Hosts that carry FSharp.Core 10.1 (lab run) never ask.
/// </remarks>
internal static class FSharpCoreUnification
{
    private static int _installed;

    // A library module initializer on purpose: it must run before any Plotly.NET code, whoever loads LabNotebooks.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            AssemblyLoadContext.Default.Resolving += Resolve;
        }
    }

    internal static Assembly? Resolve(AssemblyLoadContext context, AssemblyName requested)
    {
        if (requested.Name != "FSharp.Core" || requested.Version is not { } wanted)
        {
            return null;
        }
        return context.Assemblies.FirstOrDefault(a =>
            a.GetName() is { Name: "FSharp.Core", Version: { } loaded } && loaded.Major == wanted.Major && loaded < wanted);
    }
}
