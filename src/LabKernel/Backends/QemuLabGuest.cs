using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Guests;

namespace LabKernel.Backends;

/// <summary>The embedded guest on QEMU directly (<see cref="EmbeddedGuest"/>): root disk <c>disk0</c>, QMP block layer.</summary>
public sealed class QemuLabGuest : ILabGuest
{
    private readonly EmbeddedGuest _guest;
    private bool _stopped;

    private QemuLabGuest(EmbeddedGuest guest) => _guest = guest;

    internal static async Task<QemuLabGuest> StartAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var image = await GuestImageBuilder.EnsureAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var top = await LabGuests.CreateChainAsync(image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
        var guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions
        {
            RootDisk = top,
            WorkFolder = options.WorkFolder,
            Name = options.Name,
            MemoryMiB = options.MemoryMiB,
            AgentTimeout = options.AgentTimeout,
        }, cancellationToken).ConfigureAwait(false);
        return new QemuLabGuest(guest);
    }

    /// <summary>The QEMU process, for what only the QEMU backend offers (QMP, HMP, NBD exports).</summary>
    public Machines.QemuMachine Machine => _guest.Machine;

    public string Backend => "qemu";
    public string Name => Machine.Options.Name;
    public string Disk => "disk0";
    public string BaseImage => _guest.Image.BaseImage;
    public TimeSpan? BootToAgent => Machine.BootToAgent;
    public IGuestAgent Agent => Machine.Agent;
    public ILabBlock Block => Machine.Block();

    public string Description =>
        $"the embedded guest on QEMU directly ({Machine.Accelerator.Name}: {Machine.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start";

    public int? QemuProcessId => Machine.ProcessId;

    public DomainHandBack? HandBack => null;

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopped = true;
        await _guest.DisposeAsync().ConfigureAwait(false);
    }

    public Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        GuestReboot.RunAsync(Machine.Agent, () => Machine.Agent.ShutdownAsync("reboot", cancellationToken),
            left => Machine.WaitForAgentAsync(left, cancellationToken), timeout, cancellationToken);

    public Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default) => Task.FromResult(Machine.Block());

    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            await StopAsync().ConfigureAwait(false);
        }
    }
}
