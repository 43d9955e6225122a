using Storage.Core.Errors;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>While idle: a prepared image for a later attach.</summary>
internal sealed partial class ComputeAgent
{
    /// <summary>While idle: holds the timeline's newest image ready for a later attach (<see cref="PreparedImageStore"/>).</summary>
    public async Task<PreparedImage> PrepareAsync(PrepareRequest request, CancellationToken ct)
    {
        var (tenant, timeline, pageservers) = Validate(request);
        CancellationToken attachCancels;
        lock (_lock)
        {
            if (_state != ComputeState.Idle)
                throw new PreconditionFailedException($"VM {_options.VmId} is {_state}, not idle: only an idle VM prepares");
            attachCancels = _prepared.Token; // taken with the state: an attach from now on cancels this prepare
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, attachCancels);
        try { return await _prepared.PrepareAsync(tenant, timeline, pageservers, request.Token, linked.Token); }
        catch (OperationCanceledException) when (attachCancels.IsCancellationRequested)
        {
            throw new SupersededException($"VM {_options.VmId} was attached while preparing {tenant}/{timeline}");
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or InvalidDataException)
        {
            throw new TemporarilyUnavailableException($"preparing {tenant}/{timeline} failed: {e.Message}", e);
        }
    }
}
