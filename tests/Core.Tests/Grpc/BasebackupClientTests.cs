using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Hosting;
using Storage.Proto.Pageserver;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// <see cref="PageserverClient.BasebackupAsync"/> against a pageserver that streams what the test
/// tells it to, hosted as every service is (<see cref="ServiceHost"/>).
/// </summary>
public class BasebackupClientTests
{
    private static readonly byte[] Tar = [1, 2, 3, 4, 5];

    /// <summary>Streams <see cref="Tar"/> as one last chunk (its size and CRC right), then <see cref="Extra"/> chunks more.</summary>
    private sealed class ScriptedPageserver : Proto.Pageserver.Pageserver.PageserverBase
    {
        public int Extra { get; set; }
        public TaskCompletionSource<bool> HandlerEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task Basebackup(BasebackupRequest request, IServerStreamWriter<BasebackupChunk> responses, ServerCallContext context)
        {
            await responses.WriteAsync(new BasebackupChunk
            {
                Data = ByteString.CopyFrom(Tar), Last = true, TotalBytes = (ulong)Tar.Length, Crc32C = Crc32C.Compute(Tar), ImageLsn = 0x100, ImageCrc32C = 7,
            });
            for (int i = 0; i < Extra; i++) await responses.WriteAsync(new BasebackupChunk { Data = ByteString.CopyFrom(Tar) });
            HandlerEnded.SetResult(!context.CancellationToken.IsCancellationRequested);
        }
    }

    private static async Task<(WebApplication App, Uri Address)> HostAsync(ScriptedPageserver pageserver)
    {
        var builder = ServiceHost.CreateBuilder(new ServiceEndpoints(new IPEndPoint(IPAddress.Loopback, 0), null), "text");
        builder.Services.AddSingleton(pageserver);
        var app = builder.Build();
        app.MapGrpcService<ScriptedPageserver>();
        await app.StartAsync();
        return (app, new Uri($"http://127.0.0.1:{app.Services.GetRequiredService<BoundEndpoints>().Grpc.Port}"));
    }

    [Fact]
    public async Task The_call_returns_only_after_the_pageserver_ended_it()
    {
        var pageserver = new ScriptedPageserver();
        var (app, address) = await HostAsync(pageserver);
        await using var _ = app;
        using var received = new MemoryStream();

        var image = await PageserverClient.BasebackupAsync(address, "t", "l", new Lsn(0x200), received, TimeSpan.FromSeconds(10));

        Assert.Equal(new ImageIdentity(new Lsn(0x100), 7), image);
        Assert.Equal(Tar, received.ToArray());
        // The stream was read to its end: the handler had finished, not been cancelled by the client.
        Assert.True(pageserver.HandlerEnded.Task.IsCompleted, "the client returned while the pageserver was still sending");
        Assert.True(await pageserver.HandlerEnded.Task);
    }

    [Fact]
    public async Task Data_after_the_last_chunk_is_refused()
    {
        var pageserver = new ScriptedPageserver { Extra = 1 };
        var (app, address) = await HostAsync(pageserver);
        await using var _ = app;

        var refused = await Assert.ThrowsAsync<InvalidDataException>(() =>
            PageserverClient.BasebackupAsync(address, "t", "l", new Lsn(0x200), Stream.Null, TimeSpan.FromSeconds(10)));
        Assert.Contains("after its last chunk", refused.Message);
    }
}
