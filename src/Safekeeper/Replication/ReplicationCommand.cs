using Storage.Core;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// The commands a replication connection to a safekeeper understands (the replication grammar of
/// protocol-replication.html, the physical part), plus the SHOW and SELECT queries PostgreSQL's
/// clients send at start-up.
/// </summary>
internal abstract record ReplicationCommand
{
    public sealed record Empty : ReplicationCommand;
    public sealed record IdentifySystem : ReplicationCommand;
    public sealed record TimelineHistory(uint Timeline) : ReplicationCommand;
    /// <summary>START_REPLICATION [SLOT s] [PHYSICAL] X/Y [TIMELINE n].</summary>
    public sealed record StartReplication(Lsn Start, uint? Timeline, string? Slot) : ReplicationCommand;
    public sealed record Show(string Name) : ReplicationCommand;
    /// <summary>SELECT pg_catalog.set_config('search_path', '', false): libpq clients secure their search path.</summary>
    public sealed record ClearSearchPath : ReplicationCommand;

    public static ReplicationCommand Parse(string sql)
    {
        var text = sql.Trim().TrimEnd(';').Trim();
        if (text.Length == 0) return new Empty();
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string Keyword(int i) => i < words.Length ? words[i].ToUpperInvariant() : "";
        switch (Keyword(0))
        {
            case "IDENTIFY_SYSTEM" when words.Length == 1: return new IdentifySystem();
            case "TIMELINE_HISTORY" when words.Length == 2 && uint.TryParse(words[1], out var tli): return new TimelineHistory(tli);
            case "START_REPLICATION": return ParseStart(words, Keyword);
            case "SHOW" when words.Length == 2: return new Show(words[1].Trim('"').ToLowerInvariant());
            case "SELECT" when IsClearSearchPath(text): return new ClearSearchPath();
            case "SELECT":
                throw new ReplicationError(SqlStates.FeatureNotSupported, "a safekeeper's replication connection runs replication commands only, not SQL");
            case "BASE_BACKUP" or "CREATE_REPLICATION_SLOT" or "DROP_REPLICATION_SLOT" or "READ_REPLICATION_SLOT":
                throw new ReplicationError(SqlStates.FeatureNotSupported,
                    $"{Keyword(0)} is not served by safekeepers: they keep no replication slots and take no base backups (the pageserver does)");
        }
        throw new ReplicationError(SqlStates.SyntaxError, $"syntax error: unknown replication command \"{Truncate(text)}\"");
    }

    private static StartReplication ParseStart(string[] words, Func<int, string> keyword)
    {
        int i = 1;
        string? slot = null;
        if (keyword(i) == "SLOT")
        {
            if (i + 1 >= words.Length) throw Syntax("START_REPLICATION SLOT needs a slot name");
            slot = words[i + 1];
            i += 2;
        }
        if (keyword(i) == "LOGICAL") throw new ReplicationError(SqlStates.FeatureNotSupported, "safekeepers serve physical replication only");
        if (keyword(i) == "PHYSICAL") i++;
        if (!Lsn.TryParse(i < words.Length ? words[i] : null, out var start)) throw Syntax("START_REPLICATION needs a start position X/Y");
        i++;
        uint? timeline = null;
        if (keyword(i) == "TIMELINE")
        {
            if (!uint.TryParse(i + 1 < words.Length ? words[i + 1] : null, out var tli)) throw Syntax("TIMELINE needs a number");
            timeline = tli;
            i += 2;
        }
        if (i != words.Length) throw Syntax($"unexpected \"{words[i]}\" in START_REPLICATION");
        return new StartReplication(start, timeline, slot);
    }

    private static bool IsClearSearchPath(string text) =>
        string.Equals(new string(text.Where(c => !char.IsWhiteSpace(c)).ToArray()), "SELECTpg_catalog.set_config('search_path','',false)", StringComparison.OrdinalIgnoreCase);

    private static ReplicationError Syntax(string message) => new(SqlStates.SyntaxError, "syntax error: " + message);

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
