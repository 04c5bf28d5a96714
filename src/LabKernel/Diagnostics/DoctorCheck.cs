namespace LabKernel.Diagnostics;

/// <summary>One line of <c>lab doctor</c>.</summary>
/// <param name="Name">What was checked.</param>
/// <param name="Value">What was found (a version, a path, a reason).</param>
/// <param name="Ok">Whether it is usable.</param>
/// <param name="Required">Whether the lab cannot run without it.</param>
public sealed record DoctorCheck(string Name, string Value, bool Ok, bool Required);
