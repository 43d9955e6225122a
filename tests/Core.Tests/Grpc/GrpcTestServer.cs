using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Grpc;

namespace Storage.Core.Tests.Grpc;

/// <summary>An in-process server with the echo service on a free loopback port, plus a channel to it.</summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private GrpcTestServer(GrpcServer server, EchoService service, GrpcChannel channel)
    {
        Server = server;
        Service = service;
        Channel = channel;
    }

    public GrpcServer Server { get; }

    public EchoService Service { get; }

    public GrpcChannel Channel { get; }

    public Uri Address => new($"http://127.0.0.1:{Server.GrpcAddress.Port}");

    public static async Task<GrpcTestServer> StartAsync(GrpcServerOptions? options = null, GrpcChannelOptions? channelOptions = null)
    {
        options ??= new GrpcServerOptions();
        options = options with { GrpcEndpoint = new IPEndPoint(IPAddress.Loopback, 0) };
        var server = new GrpcServer(options, NullLoggerFactory.Instance);
        var service = new EchoService();
        service.MapTo(server);
        await server.StartAsync();
        var channel = new GrpcChannel(new Uri($"http://127.0.0.1:{server.GrpcAddress.Port}"), channelOptions);
        return new GrpcTestServer(server, service, channel);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}
