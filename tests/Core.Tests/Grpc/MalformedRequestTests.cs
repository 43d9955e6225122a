using Google.Protobuf;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>Hand-made bad requests to a service hosted as ours are: each gets a clear status, and the server keeps serving.</summary>
public class MalformedRequestTests
{
    private const string EchoPath = "/storage.test.Echo/Echo";
    private static readonly byte[] ValidRequest = new EchoRequest { Text = "x" }.ToByteArray();

    [Fact]
    public async Task Truncated_length_prefix_is_refused()
    {
        var result = await SendAsync(EchoPath, [0, 0, 0]);
        Assert.Equal(StatusCode.Internal, result.Status);
        Assert.Contains("Incomplete message", result.Message);
    }

    [Fact]
    public async Task Length_beyond_the_body_is_refused()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame([1, 2, 3], declaredLength: 100));
        Assert.Equal(StatusCode.Internal, result.Status);
        Assert.Contains("Incomplete message", result.Message);
    }

    [Fact]
    public async Task Compressed_message_without_an_encoding_is_refused()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame(ValidRequest, compressedFlag: 1));
        Assert.Equal(StatusCode.Internal, result.Status);
    }

    [Fact]
    public async Task Unsupported_grpc_encoding_is_unimplemented()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame(ValidRequest, compressedFlag: 1), headers: [("grpc-encoding", "zstd-unknown")]);
        Assert.Equal(StatusCode.Unimplemented, result.Status);
    }

    [Fact]
    public async Task Garbage_protobuf_is_refused()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame([0xFF, 0xFF, 0xFF]));
        Assert.Equal(StatusCode.Unknown, result.Status); // Grpc.AspNetCore's status for a request that does not parse
        Assert.Contains("InvalidProtocolBufferException", result.Message);
    }

    [Fact]
    public async Task Garbage_in_a_duplex_stream_after_a_good_message()
    {
        byte[] body = [.. RawGrpcClient.Frame(ValidRequest), .. RawGrpcClient.Frame([0x0A, 0x10])];
        var result = await SendAsync("/storage.test.Echo/Chat", body);
        Assert.NotEqual(StatusCode.OK, result.Status);
        Assert.True(result.Body.Length > 5, "the first reply was sent before the error");
    }

    [Fact]
    public async Task Wrong_content_type_is_refused()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame(ValidRequest), contentType: "text/plain");
        Assert.Equal(StatusCode.Internal, result.Status);
        Assert.Contains("Content-Type 'text/plain' is not supported", result.Message);
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        var result = await SendAsync("/storage.test.Echo/Missing", RawGrpcClient.Frame(ValidRequest));
        Assert.Equal(StatusCode.Unimplemented, result.Status);
        result = await SendAsync("/storage.nothing.Here/Anything", RawGrpcClient.Frame(ValidRequest));
        Assert.Equal(StatusCode.Unimplemented, result.Status);
    }

    [Fact]
    public async Task Oversized_length_prefix_is_refused_without_the_body()
    {
        // Declares 1 GiB but sends 3 bytes: the limit check comes from the prefix alone.
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame([1, 2, 3], declaredLength: 1 << 30));
        Assert.Equal(StatusCode.ResourceExhausted, result.Status);
        Assert.Contains("exceeds the maximum configured message size", result.Message);
    }

    [Fact]
    public async Task Empty_body_for_a_unary_call_is_refused()
    {
        var result = await SendAsync(EchoPath, []);
        Assert.Equal(StatusCode.Internal, result.Status);
    }

    [Fact]
    public async Task Invalid_grpc_timeout_is_refused_or_ignored_but_never_hangs()
    {
        var result = await SendAsync(EchoPath, RawGrpcClient.Frame(ValidRequest), headers: [("grpc-timeout", "soon")]);
        Assert.True(result.Status is StatusCode.OK or StatusCode.Internal, result.ToString());
    }

    [Fact]
    public async Task Oversized_messages_are_refused_by_our_client_and_our_server()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var tooBig = ByteString.CopyFrom(new byte[GrpcChannels.MaxMessageSize + 1]);
        var sent = await Assert.ThrowsAsync<RpcException>(async () => await t.Client.EchoAsync(new EchoRequest { Payload = tooBig }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal(StatusCode.ResourceExhausted, sent.StatusCode);
        var received = await Assert.ThrowsAsync<RpcException>(async () => await t.Client.EchoAsync(new EchoRequest { Repeat = GrpcChannels.MaxMessageSize + 1 }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal(StatusCode.ResourceExhausted, received.StatusCode);
        await t.AssertStillServingAsync();
    }

    /// <summary>Sends the bad request, then proves the same server still answers a good call.</summary>
    private static async Task<RawGrpcClient.Result> SendAsync(string path, byte[] body, string contentType = "application/grpc",
        (string, string)[]? headers = null)
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var raw = new RawGrpcClient(t.Address);
        var result = await raw.SendAsync(path, body, contentType, headers);
        var ok = await raw.SendAsync(EchoPath, RawGrpcClient.Frame(ValidRequest));
        Assert.Equal(StatusCode.OK, ok.Status);
        await t.AssertStillServingAsync();
        return result;
    }
}
