using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using LabKernel.Libvirt;
using LabKernel.Qmp;

namespace LabKernel.Tests.Libvirt;

/// <summary>QMP through libvirt's passthrough, with a scripted passthrough instead of libvirt.</summary>
public sealed class LibvirtQmpTransportTests
{
    private static JsonObject Greeting => LibvirtQmpTransport.Greeting(JsonNode.Parse("""{"qemu":{"major":7,"minor":2,"micro":19},"package":""}""")!.AsObject());

    private readonly ConcurrentQueue<string> _sent = new();

    private Task<string> Passthrough(string json)
    {
        _sent.Enqueue(json);
        return JsonNode.Parse(json)!["execute"]!.GetValue<string>() switch
        {
            // libvirt hands back QEMU's whole reply, with libvirt's own id.
            "query-status" => Task.FromResult("""{"return":{"status":"running","running":true},"id":"libvirt-7"}"""),
            "boom" => throw new LibvirtException("virDomainQemuMonitorCommand", "domain 'x'", 1, 10, "internal error: the monitor went away"),
            _ => Task.FromResult("""{"id":"libvirt-8","error":{"class":"CommandNotFound","desc":"The command nope has not been found"}}"""),
        };
    }

    [Fact]
    public async Task Replies_keep_the_clients_ids_and_capabilities_are_answered_without_libvirt()
    {
        await using var qmp = await QmpClient.ConnectAsync(new LibvirtQmpTransport(Passthrough, Greeting));

        Assert.Equal(new Version(7, 2, 19), qmp.QemuVersion);
        var status = await qmp.ExecuteAsync("query-status");
        Assert.Equal("running", status!["status"]!.GetValue<string>());
        Assert.Equal(["""{"execute":"query-status"}"""], _sent);
    }

    [Fact]
    public async Task QEMU_errors_and_libvirt_failures_both_come_back_as_QMP_errors_of_the_command()
    {
        await using var qmp = await QmpClient.ConnectAsync(new LibvirtQmpTransport(Passthrough, Greeting));

        var notFound = await Assert.ThrowsAsync<QmpErrorException>(() => qmp.ExecuteAsync("nope"));
        Assert.Equal("CommandNotFound", notFound.ErrorClass);
        var libvirt = await Assert.ThrowsAsync<QmpErrorException>(() => qmp.ExecuteAsync("boom"));
        Assert.Equal("GenericError", libvirt.ErrorClass);
        Assert.Contains("the monitor went away", libvirt.Message, StringComparison.Ordinal);
        // The connection survives both.
        Assert.NotNull(await qmp.ExecuteAsync("query-status"));
    }

    [Fact]
    public async Task Events_libvirt_passes_on_reach_listeners_as_QMP_events()
    {
        var transport = new LibvirtQmpTransport(Passthrough, Greeting);
        await using var qmp = await QmpClient.ConnectAsync(transport);
        using var listener = qmp.Listen("JOB_STATUS_CHANGE");

        transport.PostEvent("JOB_STATUS_CHANGE", """{"id":"mirror-1","status":"ready"}""", 1_700_000_000, 250_000);
        transport.PostEvent("JOB_STATUS_CHANGE", null, 1_700_000_001, 0);

        var e = await listener.WaitAsync("JOB_STATUS_CHANGE", TimeSpan.FromSeconds(5));
        Assert.Equal(("mirror-1", "ready"), (e.GetString("id"), e.GetString("status")));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(250_000 * 10), e.Timestamp);
        var empty = await listener.WaitAsync("JOB_STATUS_CHANGE", TimeSpan.FromSeconds(5));
        Assert.Empty(empty.Data);
    }
}
