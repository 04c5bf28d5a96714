using System.Threading.Channels;
using LabKernel.Host;

namespace LabKernel.Qmp;

/// <summary>
/// Receives the QMP events that pass its filter, from the moment it is created. Register one before issuing
/// the command that causes the event, so the event cannot be missed. Dispose to stop listening.
/// </summary>
public sealed class QmpEventListener : IDisposable
{
    private readonly Channel<QmpEvent> _channel = Channel.CreateUnbounded<QmpEvent>(new UnboundedChannelOptions { SingleReader = false });
    private readonly Func<QmpEvent, bool>? _filter;
    private readonly Action<QmpEventListener> _unregister;
    private readonly TimeProvider _time;

    internal QmpEventListener(Func<QmpEvent, bool>? filter, Action<QmpEventListener> unregister, TimeProvider time)
    {
        _filter = filter;
        _unregister = unregister;
        _time = time;
    }

    internal void Offer(QmpEvent e)
    {
        if (_filter is null || _filter(e))
        {
            _channel.Writer.TryWrite(e);
        }
    }

    internal void Complete(Exception? error) => _channel.Writer.TryComplete(error);

    /// <summary>All events that pass the filter, in order, until the connection closes or the listener is disposed.</summary>
    public IAsyncEnumerable<QmpEvent> ReadAllAsync(CancellationToken cancellationToken = default) =>
        _channel.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Takes an already received event without waiting, if there is one.</summary>
    public bool TryRead(out QmpEvent? e) => _channel.Reader.TryRead(out e);

    /// <summary>
    /// Waits for the next event matching <paramref name="predicate"/>, discarding others.
    /// Fails with <see cref="LabTimeoutException"/> naming <paramref name="awaited"/> when the limit passes (on the
    /// connection's clock, through <see cref="Poll.WithinAsync{T}"/>: the read is cancelled, so it cannot take a later
    /// event), and with <see cref="QmpDisconnectedException"/> if QEMU goes away first.
    /// </summary>
    public async Task<QmpEvent> WaitAsync(
        Func<QmpEvent, bool> predicate,
        TimeSpan timeout,
        string awaited,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        try
        {
            return await Poll.WithinAsync(async ct =>
            {
                while (true)
                {
                    var e = await _channel.Reader.ReadAsync(ct).ConfigureAwait(false);
                    if (predicate(e))
                    {
                        return e;
                    }
                }
            }, awaited, timeout, time: _time, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            throw e.InnerException as QmpDisconnectedException
                ?? new QmpDisconnectedException($"QMP connection closed while waiting for {awaited}", e);
        }
    }

    /// <summary>Waits for the next event with the given name.</summary>
    public Task<QmpEvent> WaitAsync(string eventName, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitAsync(e => e.Name == eventName, timeout, $"QMP event {eventName}", cancellationToken);

    internal TimeProvider Time => _time;

    public void Dispose()
    {
        _unregister(this);
        _channel.Writer.TryComplete();
    }
}
