using System.Net;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Storage.Core.Hosting;
using Storage.Core.Rpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// The echo service hosted exactly as every service is (<see cref="ServiceHost"/>: Kestrel,
/// Grpc.AspNetCore, our interceptor and limits) on a free loopback port, plus a client configured
/// as every client is (<see cref="GrpcChannels"/>).
/// </summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly GrpcChannel _channel;

    private GrpcTestServer(WebApplication app, EchoService service, Uri address)
    {
        _app = app;
        Service = service;
        Address = address;
        _channel = GrpcChannels.Create(address);
        Client = new Echo.EchoClient(_channel);
    }

    public EchoService Service { get; }
    public Uri Address { get; }
    public Echo.EchoClient Client { get; }

    public static async Task<GrpcTestServer> StartAsync(global::Storage.Core.Auth.TokenValidator? auth = null)
    {
        var builder = ServiceHost.CreateBuilder(new ServiceEndpoints(new IPEndPoint(IPAddress.Loopback, 0), null), "text", auth: auth);
        var service = new EchoService();
        builder.Services.AddSingleton(service);
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        var port = app.Services.GetRequiredService<BoundEndpoints>().Grpc.Port;
        return new GrpcTestServer(app, service, new Uri($"http://127.0.0.1:{port}"));
    }

    /// <summary>A deadline <paramref name="seconds"/> from now.</summary>
    public static DateTime Deadline(double seconds = 20) => DateTime.UtcNow.AddSeconds(seconds);

    /// <summary>Proves the server still answers a good call (after a bad one).</summary>
    public async Task AssertStillServingAsync()
    {
        var reply = await Client.EchoAsync(new EchoRequest { Text = "still here" }, deadline: Deadline());
        Assert.Equal("still here", reply.Text);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
