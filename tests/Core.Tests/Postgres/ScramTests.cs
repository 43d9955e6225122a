using System.IO.Pipelines;
using System.Net.Sockets;
using Npgsql;
using Storage.Core.Postgres;
using Storage.Core.Postgres.Scram;
using Storage.Core.Postgres.Wire;

namespace Storage.Core.Tests.Postgres;

/// <summary>
/// SCRAM-SHA-256 as the proxy runs it: against a stored verifier as the server (recovering the
/// session's ClientKey), and with that key as the client of a real PostgreSQL 15 that holds the
/// same verifier, so the password itself goes no further than the first hop.
/// </summary>
public class ScramTests
{
    private const string Password = "correct horse battery staple";

    /// <summary>The client-final message of a client that knows <paramref name="password"/>, as libpq or Npgsql compute it.</summary>
    private static string PasswordClientFinal(ScramServerExchange server, string password, ScramVerifier verifier)
    {
        var client = new ScramClientExchange(ScramVerifier.ClientKeyOf(password, verifier.Salt, verifier.Iterations), verifier);
        return client.HandleServerFirst(server.HandleClientFirst(client.ClientFirst));
    }

    [Fact]
    public void The_right_password_is_accepted_and_gives_the_client_key_a_wrong_one_is_refused()
    {
        var verifier = ScramVerifier.FromPassword(Password);
        Assert.Equal(verifier.ToString(), ScramVerifier.Parse(verifier.ToString()).ToString());

        var server = new ScramServerExchange(verifier);
        var accepted = server.HandleClientFinal(PasswordClientFinal(server, Password, verifier));
        Assert.NotNull(accepted);
        Assert.Equal(ScramVerifier.ClientKeyOf(Password, verifier.Salt, verifier.Iterations), accepted.Value.ClientKey);

        var other = new ScramServerExchange(verifier);
        Assert.Null(other.HandleClientFinal(PasswordClientFinal(other, "wrong", verifier)));
    }

    [Fact]
    public void Channel_binding_and_tampered_messages_are_refused_clearly()
    {
        var server = new ScramServerExchange(ScramVerifier.FromPassword(Password));
        Assert.Throws<FormatException>(() => server.HandleClientFirst("p=tls-server-end-point,,n=,r=abc"));
        server = new ScramServerExchange(ScramVerifier.FromPassword(Password));
        server.HandleClientFirst("n,,n=,r=abc");
        Assert.Throws<FormatException>(() => server.HandleClientFinal("c=biws,r=not-our-nonce,p=AAAA"));
    }

    [Fact]
    public async Task The_recovered_client_key_logs_in_to_a_real_postgres_that_holds_the_verifier()
    {
        await using var pg = await ScratchPostgres.StartAsync(new ScratchPostgresOptions
        {
            Settings = new Dictionary<string, string> { ["password_encryption"] = "'scram-sha-256'" },
            Hba = ["local all all trust", "host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"],
        });
        var verifier = ScramVerifier.FromPassword(Password);
        await pg.RunSqlAsync($"CREATE ROLE app LOGIN PASSWORD '{verifier}'"); // the verifier, never the password

        // A client that knows the password (Npgsql) gets in: the stored verifier is PostgreSQL's own format.
        await using (var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={pg.Port};Username=app;Password={Password};Database=postgres;Pooling=false"))
            await connection.OpenAsync();

        // The proxy's way: the ClientKey recovered from a client's proof, no password.
        var server = new ScramServerExchange(verifier);
        var fromClient = server.HandleClientFinal(PasswordClientFinal(server, Password, verifier))!.Value.ClientKey;
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", pg.Port);
        await using var stream = new NetworkStream(socket);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        PgFraming.WriteStartup(writer, [("user", "app"), ("database", "postgres")]);
        await writer.FlushAsync();
        await PostgresScramLogin.AuthenticateAsync(reader, writer, new ScramClientExchange(fromClient, verifier), CancellationToken.None);
        var after = await PgFraming.ReadAsync(reader, CancellationToken.None);
        Assert.Equal((byte)'S', after!.Value.Message.Type); // ParameterStatus: the session is open

        // A compute with another verifier for the role is not trusted with the key.
        var stranger = ScramVerifier.FromPassword(Password);
        await pg.RunSqlAsync($"ALTER ROLE app PASSWORD '{stranger}'");
        using var socket2 = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket2.ConnectAsync("127.0.0.1", pg.Port);
        await using var stream2 = new NetworkStream(socket2);
        var writer2 = PipeWriter.Create(stream2);
        PgFraming.WriteStartup(writer2, [("user", "app"), ("database", "postgres")]);
        await writer2.FlushAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            PostgresScramLogin.AuthenticateAsync(PipeReader.Create(stream2), writer2, new ScramClientExchange(fromClient, verifier), CancellationToken.None));
        Assert.Contains("not the endpoint's", e.Message);
    }
}
