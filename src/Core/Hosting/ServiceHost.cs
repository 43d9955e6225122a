using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.Core.Rpc;

namespace Storage.Core.Hosting;

/// <summary>Where a service listens: gRPC (HTTP/2 cleartext) and, optionally, HTTP/1.1 for /metrics and JSON APIs.</summary>
public sealed record ServiceEndpoints(IPEndPoint Grpc, IPEndPoint? Http);

/// <summary>The addresses a started service is bound to (the OS's choice where port 0 was asked for).</summary>
public sealed class BoundEndpoints
{
    internal ListenOptions? GrpcListen, HttpListen;
    public IPEndPoint Grpc => GrpcListen?.IPEndPoint ?? throw new InvalidOperationException("not started");
    public IPEndPoint? Http => HttpListen?.IPEndPoint;
}

/// <summary>
/// What every service process is built on: the Generic Host with Kestrel serving gRPC
/// (Grpc.AspNetCore, with <see cref="ServiceErrorInterceptor"/> and the message size limits of
/// <see cref="GrpcChannels"/>) and HTTP, the project's structured logging, /metrics from the
/// service's prometheus-net registry, and the READY line launchers wait for.
/// </summary>
public static class ServiceHost
{
    /// <summary>How long a stopping service lets its calls finish before the connections are aborted.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A service that checks every caller's token with the key of <paramref name="auth"/> and sends its
    /// own token (if it has one) on every call it makes.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(ServiceListenOptions service, AuthOptions auth, bool inlineScheduling = false)
    {
        GrpcChannels.DefaultToken = auth.Token();
        return CreateBuilder(service.Endpoints, service.LogFormat, inlineScheduling, auth.Validator());
    }

    /// <param name="inlineScheduling">
    /// Run socket continuations inline on Kestrel's I/O threads (the safekeeper: an append's
    /// handling should not wait for a thread-pool thread on two busy cores).
    /// </param>
    /// <param name="auth">Checks every gRPC call's token (<see cref="AuthInterceptor"/>); null only where a test hosts a service without it.</param>
    public static WebApplicationBuilder CreateBuilder(ServiceEndpoints endpoints, string? logFormat, bool inlineScheduling = false,
        Auth.TokenValidator? auth = null) =>
        Create(endpoints.Grpc, endpoints.Http, logFormat, inlineScheduling, auth);

    /// <summary>A service with an HTTP/1.1 API and /metrics on <paramref name="http"/> but no gRPC API (the compute proxy's control plane).</summary>
    public static WebApplicationBuilder CreateHttpBuilder(IPEndPoint http, string? logFormat) =>
        Create(null, http, logFormat, inlineScheduling: false, auth: null);

    private static WebApplicationBuilder Create(IPEndPoint? grpc, IPEndPoint? http, string? logFormat, bool inlineScheduling, Auth.TokenValidator? auth)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        Logging.Configure(builder.Logging, logFormat);
        var bound = new BoundEndpoints();
        builder.Services.AddSingleton(bound);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel => ConfigureKestrel(kestrel, grpc, http, bound));
        if (inlineScheduling) builder.Services.Configure<SocketTransportOptions>(o => o.UnsafePreferInlineScheduling = true);
        if (auth is not null) builder.Services.AddSingleton(auth);
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<ServiceErrorInterceptor>(); // outermost: it turns the auth refusals into statuses too
            if (auth is not null) o.Interceptors.Add<AuthInterceptor>();
            // The interceptor turns every handler failure into a status with a clear message; what
            // fails before a handler runs (a request that does not parse) says why too.
            o.EnableDetailedErrors = true;
            o.MaxReceiveMessageSize = GrpcChannels.MaxMessageSize;
            o.MaxSendMessageSize = GrpcChannels.MaxMessageSize;
        });
        return builder;
    }

    /// <summary>Serves <paramref name="registry"/> at /metrics.</summary>
    public static void MapMetrics(WebApplication app, CollectorRegistry registry) =>
        app.MapMetrics("/metrics", registry);

    /// <summary>
    /// Starts the service, runs <paramref name="beforeReady"/> (e.g. a warm-up that needs the
    /// service serving), prints <c>READY grpc=... http=...</c> plus <paramref name="readyExtra"/>
    /// (launchers wait for that line), runs until SIGTERM or Ctrl-C, and stops.
    /// </summary>
    public static async Task RunAsync(WebApplication app, Func<string>? readyExtra = null, Func<Task>? beforeReady = null)
    {
        await app.StartAsync();
        if (beforeReady is not null) await beforeReady();
        var bound = app.Services.GetRequiredService<BoundEndpoints>();
        var extra = readyExtra?.Invoke();
        var grpc = bound.GrpcListen is null ? "" : $" grpc={bound.Grpc}";
        Console.Out.WriteLine($"READY{grpc} http={bound.Http}" + (string.IsNullOrEmpty(extra) ? "" : " " + extra));
        Console.Out.Flush();
        await app.WaitForShutdownAsync();
    }

    private static void ConfigureKestrel(KestrelServerOptions kestrel, IPEndPoint? grpc, IPEndPoint? http, BoundEndpoints bound)
    {
        kestrel.AddServerHeader = false;
        // gRPC streams live long and carry any amount of data: no body size or data rate limits.
        kestrel.Limits.MaxRequestBodySize = null;
        kestrel.Limits.MinRequestBodyDataRate = null;
        kestrel.Limits.MinResponseDataRate = null;
        // Big windows so streaming many small messages is never flow-control bound.
        kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
        kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
        kestrel.Limits.Http2.InitialStreamWindowSize = 8 * 1024 * 1024;
        kestrel.Limits.Http2.MaxFrameSize = 1024 * 1024;
        kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(20);
        kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        if (grpc is not null)
            kestrel.Listen(grpc, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                bound.GrpcListen = listen;
            });
        if (http is not null)
            kestrel.Listen(http, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                bound.HttpListen = listen;
            });
    }
}
