using System.Buffers.Binary;
using System.Globalization;

namespace Storage.Core.Grpc;

/// <summary>Constants and small helpers of the gRPC-over-HTTP/2 wire protocol.</summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";

    /// <summary>Every message is prefixed by 1 compressed-flag byte and a 4-byte big-endian length.</summary>
    public const int HeaderSize = 5;

    public const int DefaultMaxMessageSize = 16 * 1024 * 1024;

    /// <summary>Accepts "application/grpc", "application/grpc+proto" and either with parameters.</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
            return false;
        ReadOnlySpan<char> value = contentType.AsSpan();
        int semicolon = value.IndexOf(';');
        if (semicolon >= 0)
            value = value[..semicolon];
        value = value.Trim();
        return value.Equals(ContentType, StringComparison.OrdinalIgnoreCase)
            || value.Equals("application/grpc+proto", StringComparison.OrdinalIgnoreCase);
    }

    public static void WriteMessageHeader(Span<byte> destination, int length)
    {
        destination[0] = 0; // not compressed: we never compress
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(1, 4), (uint)length);
    }

    /// <summary>Parses a grpc-status value; anything unrecognised becomes Unknown.</summary>
    public static GrpcStatusCode ParseStatus(string? value)
    {
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int code) && code is >= 0 and <= 16
            ? (GrpcStatusCode)code
            : GrpcStatusCode.Unknown;
    }

    public static string FormatStatus(GrpcStatusCode status) => ((int)status).ToString(CultureInfo.InvariantCulture);

    // Error texts shared by both sides so client and server report limits the same way.
    public static RpcException ReceiveTooLarge(long length, int limit) =>
        new(GrpcStatusCode.ResourceExhausted, $"Received message larger than max ({length} vs. {limit} bytes)");

    public static RpcException SendTooLarge(long length, int limit) =>
        new(GrpcStatusCode.ResourceExhausted, $"Sending message larger than max ({length} vs. {limit} bytes)");

    public static RpcException CompressedNotSupported() =>
        new(GrpcStatusCode.Internal, "Received a compressed message (compressed flag = 1), but compression is not supported; use grpc-encoding 'identity'");

    public static RpcException TruncatedHeader(long available) =>
        new(GrpcStatusCode.Internal, $"Incomplete message: the stream ended after {available} of the {HeaderSize} length-prefix bytes");

    public static RpcException TruncatedBody(long expected, long available) =>
        new(GrpcStatusCode.Internal, $"Incomplete message: the length prefix says {expected} bytes but the stream ended after {available}");

    public static RpcException InvalidMessage(string typeName, Exception error) =>
        new(GrpcStatusCode.Internal, $"Invalid protobuf message: failed to parse {typeName}: {error.Message}", error);
}
