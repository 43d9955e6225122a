using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Grpc.Core;

namespace Storage.Core.Tests.Grpc;

/// <summary>A bare HTTP/2 client that sends hand-made bodies, to feed the server malformed input.</summary>
internal sealed class RawGrpcClient(Uri address) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false })
    {
        BaseAddress = address,
        Timeout = TimeSpan.FromSeconds(20),
    };

    public sealed record Result(HttpStatusCode HttpStatus, StatusCode Status, string Message, byte[] Body);

    public static byte[] Frame(byte[] payload, byte compressedFlag = 0, int? declaredLength = null)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = compressedFlag;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), declaredLength ?? payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    public async Task<Result> SendAsync(string path, byte[] body, string contentType = "application/grpc",
        (string Name, string Value)[]? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new ByteArrayContent(body),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        foreach (var (name, value) in headers ?? [])
            request.Headers.TryAddWithoutValidation(name, value);
        using var response = await _http.SendAsync(request);
        byte[] responseBody = await response.Content.ReadAsByteArrayAsync();
        // Trailers-only responses carry the status in the headers, others in the trailers.
        HttpResponseHeaders source = response.Headers.Contains("grpc-status") ? response.Headers : response.TrailingHeaders;
        string status = source.TryGetValues("grpc-status", out var s) ? s.First() : throw new Xunit.Sdk.XunitException($"no grpc-status: {response}\nTRAILERS {response.TrailingHeaders}");
        string message = source.TryGetValues("grpc-message", out var m) ? Uri.UnescapeDataString(m.First()) : "";
        return new Result(response.StatusCode, (StatusCode)int.Parse(status), message, responseBody);
    }

    public void Dispose() => _http.Dispose();
}
