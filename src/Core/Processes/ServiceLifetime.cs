using Microsoft.AspNetCore.Http;
using Storage.Core.Grpc;
using Storage.Core.Observability;

namespace Storage.Core.Processes;

/// <summary>
/// What every service's Program does around its own work: serve /metrics, announce readiness on
/// stdout (the line launchers wait for; ports may have been chosen by the OS), and wait for
/// SIGTERM or Ctrl-C.
/// </summary>
public static class ServiceLifetime
{
    public static void MapMetrics(GrpcServer server, MetricsRegistry registry) =>
        server.MapHttpGet("/metrics", async ctx =>
        {
            ctx.Response.ContentType = MetricsRegistry.ContentType;
            await ctx.Response.WriteAsync(registry.Render());
        });

    /// <summary>Prints <c>READY grpc=... http=...</c> plus <paramref name="extra"/> (e.g. "pg=5432").</summary>
    public static void AnnounceReady(GrpcServer server, string? extra = null)
    {
        Console.Out.WriteLine($"READY grpc={server.GrpcAddress} http={server.HttpAddress}" + (extra is null ? "" : " " + extra));
        Console.Out.Flush();
    }

    /// <summary>Returns once the process is asked to stop (SIGTERM, Ctrl-C, or the runtime unloading).</summary>
    public static async Task WaitForShutdownAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; done.TrySetResult(); };
        System.Runtime.Loader.AssemblyLoadContext.Default.Unloading += _ => done.TrySetResult();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
            c => { c.Cancel = true; done.TrySetResult(); });
        await done.Task;
    }
}
