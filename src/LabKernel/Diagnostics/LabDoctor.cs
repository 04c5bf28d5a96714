using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Machines;
using LabKernel.Processes;

namespace LabKernel.Diagnostics;

/// <summary>What the lab needs on this machine and whether it is there.</summary>
public static class LabDoctor
{
    public static async Task<IReadOnlyList<DoctorCheck>> CheckAsync(CancellationToken cancellationToken = default)
    {
        var checks = new List<DoctorCheck>
        {
            await VersionAsync("qemu-system-x86_64", ["--version"], true, cancellationToken).ConfigureAwait(false),
            await VersionAsync("qemu-img", ["--version"], true, cancellationToken).ConfigureAwait(false),
            await VersionAsync("fio", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("libvirtd", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("virsh", ["--version"], false, cancellationToken).ConfigureAwait(false),
            await VersionAsync("ssh", ["-V"], false, cancellationToken).ConfigureAwait(false),
        };

        var image = GuestImageBuilder.TryGetCached();
        if (image is not null)
        {
            checks.Add(new DoctorCheck("guest image", $"built: {image.Directory}", true, true));
        }
        else
        {
            var canBuild = ProcessRunner.Which("debootstrap") is not null && ProcessRunner.Which("mkfs.ext4") is not null && LabPaths.IsRoot;
            checks.Add(new DoctorCheck("guest image",
                canBuild ? $"not built yet; the first run builds it into {GuestImageBuilder.ImageFolder(GuestImageBuilder.DefaultRecipe)} (about 2 minutes)"
                         : "not built, and cannot be built here (needs root, debootstrap and mkfs.ext4: scripts/setup)",
                canBuild, true));
        }

        try
        {
            var accel = await Accelerator.ChooseAsync(image?.Kernel, cancellationToken).ConfigureAwait(false);
            checks.Add(new DoctorCheck("accelerator", $"{accel.Name}: {accel.Reason}", true, true));
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("accelerator", e.Message, false, true));
        }
        try
        {
            checks.Add(new DoctorCheck("debian mirror", DebianMirror.Find(), true, image is null));
        }
        catch (LabException e)
        {
            checks.Add(new DoctorCheck("debian mirror", e.Message, false, image is null));
        }
        if (image is not null)
        {
            try
            {
                var (warm, why) = await WarmStates.StatusAsync(image, cancellationToken).ConfigureAwait(false);
                checks.Add(new DoctorCheck("warm start", why, warm, false));
            }
            catch (LabException e)
            {
                checks.Add(new DoctorCheck("warm start", e.Message, false, false));
            }
        }
        var leftovers = await Leftovers.FindAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        checks.Add(new DoctorCheck("leftovers", leftovers.Any ? $"{leftovers.Summary} (lab clean removes them)" : leftovers.Summary, !leftovers.Any, false));
        return checks;
    }

    private static async Task<DoctorCheck> VersionAsync(string program, string[] args, bool required, CancellationToken cancellationToken)
    {
        var path = ProcessRunner.Which(program);
        if (path is null)
        {
            return new DoctorCheck(program, "missing (scripts/setup installs it)", false, required);
        }
        try
        {
            var r = await ProcessRunner.RunAsync(path, args, new ProcessOptions { Timeout = TimeSpan.FromSeconds(20), Check = false }, cancellationToken).ConfigureAwait(false);
            var text = (r.StandardOutput + r.StandardError).Trim().Split('\n')[0].Trim();
            return new DoctorCheck(program, text, r.Succeeded, required);
        }
        catch (LabException e)
        {
            return new DoctorCheck(program, e.Message, false, required);
        }
    }
}
