using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Storage.Core.Postgres.Wire;

namespace Storage.Core.Postgres.Scram;

/// <summary>
/// Answers a PostgreSQL server's authentication requests with SCRAM-SHA-256 (the client side of
/// the SASL exchange: AuthenticationSASL, -Continue, -Final), after the StartupMessage was sent.
/// Returns once AuthenticationOk is consumed: what the server sends next (ParameterStatus,
/// BackendKeyData, ReadyForQuery) is still in <paramref name="reader"/>.
/// </summary>
public static class PostgresScramLogin
{
    private const int AuthOk = 0, AuthSasl = 10, AuthSaslContinue = 11, AuthSaslFinal = 12;

    public static async Task AuthenticateAsync(PipeReader reader, PipeWriter writer, ScramClientExchange scram, CancellationToken ct)
    {
        while (true)
        {
            var next = await PgFraming.ReadAsync(reader, ct) ?? throw new EndOfStreamException("the server closed the connection during authentication");
            var (message, consumed) = next;
            byte[] body;
            try
            {
                PgFraming.ThrowIfError(message);
                if (message.Type != (byte)'R') throw new InvalidDataException($"expected an authentication request, got '{(char)message.Type}'");
                body = message.Body.ToArray();
            }
            finally { reader.AdvanceTo(consumed); }
            int code = BinaryPrimitives.ReadInt32BigEndian(body);
            var data = Encoding.UTF8.GetString(body, 4, body.Length - 4);
            switch (code)
            {
                case AuthOk:
                    return;
                case AuthSasl:
                    if (!data.Split('\0').Contains(ScramVerifier.Mechanism))
                        throw new NotSupportedException($"the server offers SASL mechanisms '{data.Replace('\0', ' ').Trim()}', not {ScramVerifier.Mechanism}");
                    WriteSaslInitialResponse(writer, scram.ClientFirst);
                    break;
                case AuthSaslContinue:
                    WriteSaslResponse(writer, scram.HandleServerFirst(data));
                    break;
                case AuthSaslFinal:
                    scram.HandleServerFinal(data);
                    continue; // AuthenticationOk follows
                default:
                    throw new NotSupportedException($"the server asks for authentication method {code}; only SCRAM-SHA-256 is spoken");
            }
            await writer.FlushAsync(ct);
        }
    }

    private static void WriteSaslInitialResponse(PipeWriter writer, string clientFirst)
    {
        var mechanism = Encoding.ASCII.GetBytes(ScramVerifier.Mechanism);
        var data = Encoding.UTF8.GetBytes(clientFirst);
        var body = PgFraming.WriteHeader(writer, (byte)'p', mechanism.Length + 1 + 4 + data.Length);
        mechanism.CopyTo(body);
        body[mechanism.Length] = 0;
        BinaryPrimitives.WriteInt32BigEndian(body[(mechanism.Length + 1)..], data.Length);
        data.CopyTo(body[(mechanism.Length + 5)..]);
        writer.Advance(5 + body.Length);
    }

    private static void WriteSaslResponse(PipeWriter writer, string text)
    {
        var data = Encoding.UTF8.GetBytes(text);
        var body = PgFraming.WriteHeader(writer, (byte)'p', data.Length);
        data.CopyTo(body);
        writer.Advance(5 + data.Length);
    }
}
