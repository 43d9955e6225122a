using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Compute;

namespace Storage.Cli;

/// <summary>The calls storagectl makes to a compute agent.</summary>
public static class ComputeClient
{
    public static async Task<ComputeStatus> StatusAsync(ComputeEntry vm)
    {
        using var channel = new GrpcChannel(vm.Uri);
        return await channel.UnaryAsync(ComputeApi.Status, new StatusRequest(), new CallOptions(TimeSpan.FromSeconds(3)));
    }

    public static async Task<ComputeStatus> AttachAsync(ComputeEntry vm, AttachRequest request, CancellationToken ct)
    {
        using var channel = new GrpcChannel(vm.Uri);
        return await channel.UnaryAsync(ComputeApi.Attach, request, new CallOptions(TimeSpan.FromMinutes(3), ct));
    }
}
