using System.Text;

namespace Storage.Core.Postgres;

/// <summary>Writes postgresql.conf settings and pg_hba.conf lines into a data directory.</summary>
public static class PostgresSettings
{
    /// <summary>
    /// Appends settings to postgresql.conf (later lines win over initdb's). String values are
    /// quoted as PostgreSQL expects; numbers and on/off are written as they are.
    /// </summary>
    public static async Task AppendAsync(string dataDirectory, IEnumerable<KeyValuePair<string, string>> settings, CancellationToken ct = default)
    {
        var text = new StringBuilder("\n# written by storage\n");
        foreach (var (name, value) in settings)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z_][a-z0-9_.]*$"))
                throw new ArgumentException($"'{name}' is not a PostgreSQL setting name");
            text.Append(name).Append(" = ").Append(Quote(value)).Append('\n');
        }
        // Appending keeps the file's owner (postgres).
        await File.AppendAllTextAsync(Path.Combine(dataDirectory, "postgresql.conf"), text.ToString(), ct);
    }

    /// <summary>Replaces pg_hba.conf with <paramref name="lines"/>.</summary>
    public static async Task WriteHbaAsync(string dataDirectory, IEnumerable<string> lines, CancellationToken ct = default)
    {
        var path = Path.Combine(dataDirectory, "pg_hba.conf");
        // Truncate in place rather than replace, so the file keeps its owner.
        await using var file = new FileStream(path, FileMode.Truncate, FileAccess.Write);
        await using var writer = new StreamWriter(file);
        foreach (var line in lines) await writer.WriteLineAsync(line);
    }

    private static string Quote(string value)
    {
        // Numbers with an optional unit (128MB, 0.9, 10s) and booleans go bare; everything else is quoted.
        bool bare = System.Text.RegularExpressions.Regex.IsMatch(value, @"^-?\d+(\.\d+)?[a-zA-Z]*$") || value is "on" or "off" or "true" or "false";
        return bare ? value : "'" + value.Replace("\\", "\\\\").Replace("'", "''") + "'";
    }
}
