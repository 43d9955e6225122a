using Storage.Core.Api;
using Storage.Proto.Safekeeper;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// The timeline a replication connection streams, named in its startup packet's <c>options</c>
/// parameter as PostgreSQL settings: <c>options='-c tenant_id=HEX32 -c timeline_id=HEX32'</c>
/// (<c>--tenant_id=HEX32</c> works too). Not the database name: both PostgreSQL's walreceiver and
/// pg_receivewal send dbname=replication whatever their connection string says, while the options
/// keyword reaches the server from primary_conninfo and from pg_receivewal's -d alike.
/// </summary>
internal static class TimelineAddress
{
    public const string Hint = "name the timeline in the connection's options: options='-c tenant_id=<hex32> -c timeline_id=<hex32>'";

    public static TimelineKey Parse(string? options)
    {
        var settings = Settings(options ?? "");
        if (!settings.TryGetValue("tenant_id", out var tenant) || !settings.TryGetValue("timeline_id", out var timeline))
            throw new ReplicationError(SqlStates.UnknownTimeline, "the connection names no timeline", fatal: true, reason: "no_timeline", hint: Hint);
        try
        {
            return new TimelineKey { TenantId = TimelineIds.Normalize(tenant, "tenant_id"), TimelineId = TimelineIds.Normalize(timeline, "timeline_id") };
        }
        catch (ArgumentException e) { throw new ReplicationError(SqlStates.UnknownTimeline, e.Message, fatal: true, reason: "no_timeline", hint: Hint); }
    }

    /// <summary>The name=value settings of a PostgreSQL command-line options string (other switches are ignored).</summary>
    private static Dictionary<string, string> Settings(string options)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var words = options.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < words.Length; i++)
        {
            string? setting = words[i] switch
            {
                "-c" when i + 1 < words.Length => words[++i],
                var w when w.StartsWith("-c", StringComparison.Ordinal) => w[2..],
                var w when w.StartsWith("--", StringComparison.Ordinal) => w[2..],
                _ => null,
            };
            if (setting is null || setting.IndexOf('=') is not (int eq and > 0)) continue;
            // PostgreSQL treats '-' in a setting name as '_'.
            result[setting[..eq].Replace('-', '_')] = setting[(eq + 1)..];
        }
        return result;
    }
}
