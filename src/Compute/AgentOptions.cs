using Storage.Core.Postgres;

namespace Storage.Compute;

/// <summary>Where one agent keeps its things, and the PostgreSQL port it serves on.</summary>
internal sealed record AgentOptions(string VmId, string WorkDirectory, int PostgresPort, PostgresBinaries Binaries)
{
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>
    /// pg_wal keeps at most this much WAL below the commit LSN for a lagging safekeeper: one that
    /// never acknowledges (down for good, a full disk) must not fill the compute's disk. It needs
    /// nothing from pg_wal anyway (it recovers from its peers); the walsender only reads above the
    /// commit LSN.
    /// </summary>
    public long MaxRetainedWalBytes { get; init; } = 1L << 30;
    /// <summary>
    /// PostgreSQL's listen_addresses. Loopback for a VM on the proxy's machine; a VM in a container
    /// of its own listens on its network (e.g. "*"), and then SCRAM logins from the hosts of the
    /// networks it is on (the proxy's) are allowed too.
    /// </summary>
    public string ListenAddresses { get; init; } = Loopback;
    public const string Loopback = "127.0.0.1";
    public string DataDirectory => Path.Combine(PostgresDirectory, "pgdata");
    public string SocketDirectory => Path.Combine(PostgresDirectory, "sock");
    public string PostgresLog => Path.Combine(WorkDirectory, "postgres.log");

    /// <summary>
    /// Where PostgreSQL's files live: the work directory, unless the postgres user cannot reach it
    /// (a root user's home is 0700). The data directory is only a cache, so a folder under the
    /// system temp directory, named after the work directory, serves as well.
    /// </summary>
    public string PostgresDirectory { get; } = OsUser.ReachableDirectory(WorkDirectory, VmId);
}
