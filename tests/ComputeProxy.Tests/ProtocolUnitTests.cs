using Storage.Core.Postgres.Wire;
using System.Buffers;
using System.Buffers.Binary;
using Storage.ComputeProxy.Proxy;

namespace Storage.ComputeProxy.Tests;

public sealed class EndpointRouterTests
{
    private static StartupPacket.Startup Startup(params (string, string)[] parameters) =>
        new(3 << 16, parameters.Select(p => new KeyValuePair<string, string>(p.Item1, p.Item2)).ToList());

    [Theory]
    [InlineData("endpoint=ep1", null)]
    [InlineData("-c endpoint=ep1", null)]
    [InlineData("--endpoint=ep1 -c work_mem=1MB", "-c work_mem=1MB")]
    [InlineData("-c search_path=a\\ b -cendpoint=ep1", "-c search_path=a\\ b")]
    [InlineData("-c x=1 -c endpoint=ep1 -c y=2", "-c x=1 -c y=2")]
    public void The_endpoint_option_is_taken_and_stripped_keeping_the_rest_verbatim(string options, string? forwarded)
    {
        var route = new EndpointRouter(null, null).Route(Startup(("user", "u"), ("options", options), ("database", "d")), null);
        Assert.Equal("ep1", route.EndpointId);
        Assert.Equal("options", route.Source);
        Assert.Equal(forwarded, route.Forward.Get("options"));
        Assert.Equal(forwarded == null ? ["user", "database"] : ["user", "options", "database"], route.Forward.Parameters.Select(p => p.Key));
    }

    [Fact]
    public void Sni_then_default_are_used_when_options_name_none()
    {
        var router = new EndpointRouter("main", "proxy.test");
        Assert.Equal(("ep9", "sni"), Pick(router, "EP9.proxy.test"));
        Assert.Equal(("main", "default"), Pick(router, "ep9.other.test"));
        Assert.Equal(("main", "default"), Pick(router, null));
        Assert.Equal(("db", "sni"), Pick(new EndpointRouter(null, null), "db.example.com"));
    }

    private static (string, string) Pick(EndpointRouter router, string? sni)
    {
        var route = router.Route(Startup(("user", "u")), sni);
        return (route.EndpointId, route.Source);
    }

    [Theory]
    [InlineData("endpoint=a endpoint=b", "two endpoints")]
    [InlineData("endpoint=bad/name", "invalid endpoint id")]
    [InlineData("endpoint=", "invalid endpoint id")]
    public void Conflicting_or_invalid_endpoints_are_refused_with_08004(string options, string message)
    {
        var e = Assert.Throws<ProxyRejectException>(() => new EndpointRouter("main", null).Route(Startup(("user", "u"), ("options", options)), null));
        Assert.Equal(SqlStates.RejectedEstablishment, e.SqlState);
        Assert.Contains(message, e.Message);
    }
}

public sealed class StartupPacketTests
{
    [Fact]
    public void A_startup_message_round_trips()
    {
        var startup = new StartupPacket.Startup(3 << 16, [new("user", "ü"), new("database", "d")]);
        var parsed = Assert.IsType<StartupPacket.Startup>(StartupPacket.Parse(startup.Serialize()));
        Assert.Equal(startup.Parameters, parsed.Parameters);
        Assert.Equal(3 << 16, parsed.ProtocolVersion);
    }

    [Fact]
    public void A_cancel_request_keeps_the_key_and_raw_bytes()
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 16);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), StartupPacket.CancelRequestCode);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), 4242);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), -7);
        var cancel = Assert.IsType<StartupPacket.CancelRequest>(StartupPacket.Parse(bytes));
        Assert.Equal(4242, cancel.ProcessId);
        Assert.Equal(bytes[8..], cancel.Key);
        Assert.Equal(bytes, cancel.Raw);
    }

    [Fact]
    public void An_error_response_carries_severity_sqlstate_message_and_hint()
    {
        var bytes = ErrorResponse.Build("FATAL", "3D000", "endpoint \"x\" does not exist", "check it");
        Assert.Equal((byte)'E', bytes[0]);
        Assert.Equal(bytes.Length - 1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(1)));
        var fields = ErrorResponse.ParseFields(bytes.AsSpan(5));
        Assert.Equal(("FATAL", "3D000", "endpoint \"x\" does not exist", "check it"), (fields['S'], fields['C'], fields['M'], fields['H']));
    }

    [Fact]
    public void Peek_waits_for_a_whole_error_response_in_any_split_and_passes_other_messages()
    {
        var error = ErrorResponse.Build("FATAL", "57P03", "the database system is starting up");
        for (int cut = 0; cut < error.Length; cut++)
            Assert.False(ErrorResponse.TryPeek(new ReadOnlySequence<byte>(error, 0, cut), out _), $"complete after {cut} bytes");
        var withMore = error.Concat(new byte[] { (byte)'Z', 0, 0, 0, 5, (byte)'I' }).ToArray();
        Assert.True(ErrorResponse.TryPeek(new ReadOnlySequence<byte>(withMore), out var fields));
        Assert.Equal(("57P03", "the database system is starting up"), (fields!['C'], fields['M']));

        byte[] authOk = [(byte)'R', 0, 0, 0, 8, 0, 0, 0, 0];
        Assert.True(ErrorResponse.TryPeek(new ReadOnlySequence<byte>(authOk, 0, 1), out fields));
        Assert.Null(fields);
        byte[] huge = [(byte)'E', 0x7f, 0, 0, 0];
        Assert.True(ErrorResponse.TryPeek(new ReadOnlySequence<byte>(huge), out fields)); // relayed unread, never awaited whole
        Assert.Null(fields);
    }
}

public sealed class BackendKeySnifferTests
{
    private static byte[] Message(char type, byte[] body)
    {
        var bytes = new byte[5 + body.Length];
        bytes[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(1), 4 + body.Length);
        body.CopyTo(bytes, 5);
        return bytes;
    }

    private static readonly byte[] Key = [0, 0, 0x12, 0x34, 1, 2, 3, 4];

    /// <summary>What PostgreSQL sends after authentication, then a query result the sniffer must not look at.</summary>
    private static byte[] StartupStream() =>
    [
        .. Message('R', [0, 0, 0, 0]),
        .. Message('S', "server_version\015.0\0"u8.ToArray()),
        .. Message('K', Key),
        .. Message('Z', [(byte)'I']),
        .. Message('K', [9, 9, 9, 9, 9, 9, 9, 9]),
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(1000)]
    public void The_key_is_found_however_the_bytes_are_chunked_and_nothing_after_ReadyForQuery(int chunk)
    {
        var found = new List<byte[]>();
        var sniffer = new BackendKeySniffer { KeyFound = found.Add };
        var stream = StartupStream();
        for (int at = 0; at < stream.Length; at += chunk)
            sniffer.Observe(new ReadOnlySequence<byte>(stream, at, Math.Min(chunk, stream.Length - at)));
        Assert.Equal([Key], found);
        Assert.True(sniffer.Done);
    }

    [Fact]
    public void A_nonsense_length_stops_the_sniffer_instead_of_throwing()
    {
        var sniffer = new BackendKeySniffer();
        sniffer.Observe(new ReadOnlySequence<byte>([(byte)'X', 0, 0, 0, 1, 5, 5]));
        Assert.True(sniffer.Done);
    }
}
