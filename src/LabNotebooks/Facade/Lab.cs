using LabKernel;
using LabKernel.Backends;
using LabKernel.Experiments;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Libvirt;

namespace LabNotebooks;

/// <summary>
/// The notebooks' front door: one call that checks the parameters, makes the run folder and the starting chain,
/// and starts (or takes over) the guest. Everything a notebook does next hangs off the returned
/// <see cref="Experiment"/>.
/// </summary>
public static class Lab
{
    /// <summary>
    /// Starts experiment <paramref name="name"/>: a one-line <see cref="LabUsageException"/> for a wrong backend
    /// choice, a fresh journal, the run folder (under <see cref="LabSetup.OutputDir"/> or the cache), the
    /// overlays and data disks, and the guest with its agent answering.
    /// </summary>
    public static async Task<Experiment> StartAsync(string name, LabSetup setup, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(setup);
        setup.Validate();
        var (backend, domain) = LabGuests.CheckChoice(setup.Backend, setup.Domain);
        var journal = LabJournal.Current;
        journal.Clear();
        // A domain on another hypervisor: its images are there, reached over SSH for the whole run (one session,
        // shared with the libvirt connection, closed when the experiment finishes).
        var remote = backend == GuestBackend.Libvirt && !LabHosts.FilesAreLocal(setup.LibvirtUri)
            ? await LabHosts.ForLibvirtUriAsync(setup.LibvirtUri, cancellationToken).ConfigureAwait(false)
            : null;
        ExperimentRun run;
        try
        {
            run = remote is null
                ? ExperimentRun.Create(name, setup.KeepArtifacts, setup.OutputDir)
                : await ExperimentRun.CreateAsync(name, remote, setup.KeepArtifacts, setup.OutputDir, setup.HostFolder, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (remote is not null)
            {
                await remote.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
        try
        {
            var overlays = setup.Overlays.Select(role => run.NewFile(role, $"{role}.qcow2")).ToArray();
            var dataDisks = new List<string>();
            foreach (var disk in setup.DataDisks)
            {
                var file = run.NewFile(disk.Role, $"{disk.Role}.qcow2");
                await QemuImg.On(run.Host).CreateAsync(file, "qcow2", disk.SizeMiB * 1024 * 1024, cancellationToken: cancellationToken).ConfigureAwait(false);
                dataDisks.Add(file);
            }
            var guest = await LabGuests.StartAsync(new LabGuestOptions
            {
                Backend = backend,
                Domain = domain,
                DomainDisk = setup.DomainDisk,
                LibvirtUri = setup.LibvirtUri,
                Host = run.Host,
                HostFolder = string.IsNullOrWhiteSpace(setup.HostFolder) ? ExperimentRun.DefaultHostFolder : setup.HostFolder.Trim(),
                Name = ShortName(name),
                WorkFolder = run.Folder,
                Overlays = overlays,
                NewFile = run.NewFile,
                DataDisks = dataDisks,
                MemoryMiB = setup.MemoryMiB,
                // The first use builds the guest image (minutes): its steps go to the cell's output as they come.
                BuildProgress = new LabKernel.Guests.BuildProgressLines(Console.WriteLine),
            }, cancellationToken).ConfigureAwait(false);
            run.UseExisting("base", guest.BaseImage);
            if (guest.TakeOver is { } takeOver)
            {
                // How your domain was taken over is part of the evidence: a crash-consistent start is said, not hidden.
                run.Findings.Note($"How the lab took over your domain's disk {takeOver.Disk}", takeOver.Evidence);
            }
            return new Experiment(run, guest, journal, remote);
        }
        catch
        {
            try
            {
                if (await WhyKeepAfterFailedStartAsync(run.Host, run.ImageFolder).ConfigureAwait(false) is { } why)
                {
                    LabKernel.Host.LabWarnings.Raise($"kept {run.ImageFolder} on {run.Host.Name}: {why}; `lab clean{(remote is null ? "" : " --uri URI --host-folder FOLDER")}` hands the domain back from the record there once its host answers");
                }
                else
                {
                    await run.CleanUpAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            finally
            {
                if (remote is not null)
                {
                    await remote.DisposeAsync().ConfigureAwait(false);
                }
            }
            throw;
        }
    }

    /// <summary><c>04-snapshot-chain-io</c> becomes <c>nb04</c>, as the guests of 01-03 were named.</summary>
    private static string ShortName(string name)
    {
        var digits = new string(name.TakeWhile(char.IsAsciiDigit).ToArray());
        return digits.Length > 0 ? $"nb{digits}" : "lab";
    }

    /// <summary>
    /// After a start that failed, why the run's image folder must stay, or null to clean it up. A failed take-over
    /// deletes its record once the domain's definition names the user's images again; one it could not undo (libvirtd
    /// gone mid-way) leaves the record, and then the domain may name the lab's overlays in that folder: deleting them
    /// would leave it naming files that are gone, so they stay for `lab clean` to hand the domain back. A folder that
    /// cannot be read stays too: keeping files is never a loss.
    /// </summary>
    internal static async Task<string?> WhyKeepAfterFailedStartAsync(LabKernel.Host.ILabHost host, string imageFolder)
    {
        try
        {
            if (!await host.FileExistsAsync(Path.Combine(imageFolder, TakeOverRecord.FileName), CancellationToken.None).ConfigureAwait(false))
            {
                return null;
            }
            var record = await TakeOverRecord.ReadAsync(host, imageFolder, CancellationToken.None).ConfigureAwait(false);
            return $"the take-over of domain '{record?.Domain ?? "(unreadable record)"}' could not be undone, so its definition may still name the lab's overlays there";
        }
        catch (LabException e)
        {
            return $"its host did not answer ({e.Message.Split('\n')[0]})";
        }
    }
}
