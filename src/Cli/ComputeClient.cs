using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Compute;

namespace Storage.Cli;

/// <summary>The calls storagectl makes to a compute agent (for status: the control plane owns the VMs).</summary>
public static class ComputeClient
{
    public static async Task<ComputeStatus> StatusAsync(Uri agent)
    {
        using var channel = new GrpcChannel(agent);
        return await channel.UnaryAsync(ComputeApi.Status, new StatusRequest(), new CallOptions(TimeSpan.FromSeconds(3)));
    }
}
