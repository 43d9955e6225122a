using Storage.Core.Postgres;

namespace Storage.ComputeProxy.Tests;

/// <summary>
/// One scratch PostgreSQL 15 for the test class, playing a compute: TCP connections of role
/// <see cref="User"/> must authenticate with SCRAM (postgres keeps trust, for the fixture's own psql).
/// </summary>
public sealed class ScramPostgresFixture : IAsyncLifetime
{
    public const string User = "app";
    public const string Password = "s3cret-pass";
    public const string Database = "app";

    public ScratchPostgres Postgres { get; private set; } = null!;
    public ComputeAddress Address => new(Postgres.Host, Postgres.Port, "vm-test");

    public async Task InitializeAsync()
    {
        Postgres = await ScratchPostgres.StartAsync(new ScratchPostgresOptions
        {
            Settings = new Dictionary<string, string> { ["password_encryption"] = "'scram-sha-256'", ["max_connections"] = "50" },
            Hba = ["local all all trust", "host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"],
        });
        await Postgres.RunSqlAsync($"CREATE ROLE {User} LOGIN CREATEDB PASSWORD '{Password}'");
        await Postgres.RunSqlAsync($"CREATE DATABASE {Database} OWNER {User}");
    }

    public async Task DisposeAsync() => await Postgres.DisposeAsync();
}
