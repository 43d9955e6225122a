using System.Net;
using Google.Protobuf;
using Storage.Core.Grpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>Hand-made bad requests: each gets a clear status, and the server keeps serving.</summary>
public class MalformedRequestTests
{
    private static readonly byte[] ValidRequest = new EchoRequest { Text = "x" }.ToByteArray();

    [Fact]
    public async Task Truncated_length_prefix_is_internal()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, [0, 0, 0]);
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("Incomplete message", result.Message);
        Assert.Contains("3 of the 5 length-prefix bytes", result.Message);
    }

    [Fact]
    public async Task Length_beyond_the_body_is_internal()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame([1, 2, 3], declaredLength: 100));
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("length prefix says 100 bytes but the stream ended after 3", result.Message);
    }

    [Fact]
    public async Task Compressed_flag_is_rejected()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest, compressedFlag: 1));
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("compression is not supported", result.Message);
    }

    [Fact]
    public async Task Unsupported_grpc_encoding_is_unimplemented()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest), headers: [("grpc-encoding", "gzip")]);
        Assert.Equal(GrpcStatusCode.Unimplemented, result.Status);
        Assert.Contains("grpc-encoding 'gzip'", result.Message);
    }

    [Fact]
    public async Task Garbage_protobuf_is_internal_and_names_the_type()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame([0xFF, 0xFF, 0xFF]));
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("Invalid protobuf message: failed to parse EchoRequest", result.Message);
    }

    [Fact]
    public async Task Garbage_in_a_duplex_stream_after_a_good_message()
    {
        byte[] body = [.. RawGrpcClient.Frame(ValidRequest), .. RawGrpcClient.Frame([0x0A, 0x10])];
        var result = await SendAsync(EchoMethods.Chat.Path, body);
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("Invalid protobuf message", result.Message);
        Assert.True(result.Body.Length > 5, "the first reply was sent before the error");
    }

    [Fact]
    public async Task Wrong_content_type_is_rejected()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest), contentType: "text/plain");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, result.HttpStatus);
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("Content-Type 'text/plain' is not supported", result.Message);
    }

    [Fact]
    public async Task Grpc_proto_content_type_is_accepted()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest), contentType: "application/grpc+proto");
        Assert.Equal(GrpcStatusCode.OK, result.Status);
        Assert.Equal("x", EchoReply.Parser.ParseFrom(result.Body.AsSpan(5)).Text);
    }

    [Fact]
    public async Task Oversized_length_prefix_is_rejected_without_the_body()
    {
        // Declares 1 GiB but sends 3 bytes: the limit check must come from the prefix alone.
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame([1, 2, 3], declaredLength: 1 << 30));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, result.Status);
        Assert.Contains($"({1 << 30} vs. {16 << 20} bytes)", result.Message);
    }

    [Fact]
    public async Task Empty_body_for_a_unary_call_is_internal()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, []);
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("ended without a message", result.Message);
    }

    [Fact]
    public async Task Invalid_grpc_timeout_is_rejected()
    {
        var result = await SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest), headers: [("grpc-timeout", "soon")]);
        Assert.Equal(GrpcStatusCode.Internal, result.Status);
        Assert.Contains("Invalid grpc-timeout header 'soon'", result.Message);
    }

    /// <summary>Sends the bad request, then proves the same server still answers a good call.</summary>
    private static async Task<RawGrpcClient.Result> SendAsync(string path, byte[] body, string contentType = "application/grpc",
        (string, string)[]? headers = null)
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var raw = new RawGrpcClient(t.Address);
        var result = await raw.SendAsync(path, body, contentType, headers);
        var ok = await raw.SendAsync(EchoMethods.Echo.Path, RawGrpcClient.Frame(ValidRequest));
        Assert.Equal(GrpcStatusCode.OK, ok.Status);
        await GrpcCallTests.AssertStillServingAsync(t);
        return result;
    }
}
