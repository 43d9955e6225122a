namespace Storage.Core.Postgres;

/// <summary>
/// Where the PostgreSQL 15 server and client programs live. The environment variable
/// STORAGE_PG_BIN overrides the Debian default /usr/lib/postgresql/15/bin.
/// </summary>
public sealed class PostgresBinaries
{
    public const string EnvironmentVariable = "STORAGE_PG_BIN";
    public const string DefaultDirectory = "/usr/lib/postgresql/15/bin";

    public string Directory { get; }

    public PostgresBinaries(string directory)
    {
        if (!System.IO.Directory.Exists(directory) || !File.Exists(Path.Combine(directory, "postgres")))
            throw new InvalidOperationException(
                $"PostgreSQL binaries not found in '{directory}' (no 'postgres' there). Install PostgreSQL 15 or set {EnvironmentVariable} to its bin directory.");
        Directory = directory;
    }

    /// <summary>Uses STORAGE_PG_BIN when set, otherwise the default directory.</summary>
    public static PostgresBinaries Locate()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return new PostgresBinaries(string.IsNullOrWhiteSpace(fromEnv) ? DefaultDirectory : fromEnv);
    }

    public string InitDb => Tool("initdb");
    public string Postgres => Tool("postgres");
    public string PgCtl => Tool("pg_ctl");
    public string PgWalDump => Tool("pg_waldump");
    public string Psql => Tool("psql");
    public string PgIsReady => Tool("pg_isready");
    public string PgBaseBackup => Tool("pg_basebackup");
    public string PgBench => Tool("pgbench");

    /// <summary>Path of any program in the bin directory.</summary>
    public string Tool(string name) => Path.Combine(Directory, name);
}
