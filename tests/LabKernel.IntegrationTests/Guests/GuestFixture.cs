using LabKernel.Guests;

namespace LabKernel.IntegrationTests.Guests;

/// <summary>One booted embedded guest shared by a test collection (the image is built on first use).</summary>
public sealed class GuestFixture : IAsyncLifetime
{
    private EmbeddedGuest? _guest;

    public EmbeddedGuest Guest => _guest ?? throw new InvalidOperationException("guest not started");

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        _guest = await EmbeddedGuest.StartAsync(new EmbeddedGuestOptions { Name = "itest" }, cts.Token);
        // SSH tests need sshd, which starts just after the agent.
        await _guest.Machine.Ssh!.WaitUntilReadyAsync(TimeSpan.FromSeconds(90), cts.Token);
    }

    public async Task DisposeAsync()
    {
        if (_guest is not null)
        {
            await _guest.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class GuestCollection : ICollectionFixture<GuestFixture>
{
    public const string Name = "embedded guest";
}
