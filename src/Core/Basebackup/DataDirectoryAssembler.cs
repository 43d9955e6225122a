using Storage.Core.Postgres;

namespace Storage.Core.Basebackup;

/// <summary>Final touches on an unpacked basebackup before PostgreSQL may start on it.</summary>
public static class DataDirectoryAssembler
{
    /// <summary>Gives an unpacked data directory to the postgres user with the mode PostgreSQL insists on.</summary>
    public static async Task HandToPostgresAsync(string dataDirectory, CancellationToken ct)
    {
        // PostgreSQL refuses a data directory others can read.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsUser.GiveToPostgresAsync(dataDirectory, ct);
    }
}
