using System.Text.Json.Serialization;
using Storage.Core;
using Storage.Proto.Pageserver;

namespace Storage.Cli;

/// <summary>
/// One timeline on a pageserver, as `status` and `timeline list` show it: where its WAL starts
/// (and its ancestor, for a branch), how far it is ingested and durable, its images and retention.
/// </summary>
public sealed record PageserverTimelineReport(string TenantId, string TimelineId, string StartLsn, string? AncestorTimelineId, string? AncestorLsn,
    string IngestedLsn, string SafekeeperCommitLsn, string RemoteConsistentLsn, uint ImageCount, string LatestImageLsn,
    string OldestBasebackupLsn, ulong Generation, string WalSource, string Mode = "attached")
{
    public static PageserverTimelineReport From(TimelineInfo t)
    {
        bool branch = t.AncestorTimelineId.Length > 0;
        return new(t.Timeline.TenantId, t.Timeline.TimelineId, Format(t.StartLsn), branch ? t.AncestorTimelineId : null, branch ? Format(t.AncestorLsn) : null,
            Format(t.IngestedLsn), Format(t.SafekeeperCommitLsn), Format(t.RemoteConsistentLsn), t.ImageCount, Format(t.LatestImageLsn),
            Format(t.OldestBasebackupLsn), t.Generation, t.WalSource, t.Mode == LocationMode.Secondary ? "secondary" : "attached");
    }

    /// <summary>"ancestor@lsn" for a branch, "-" for a timeline from initdb.</summary>
    [JsonIgnore] public string Ancestor => AncestorTimelineId is null ? "-" : $"{AncestorTimelineId}@{AncestorLsn}";

    private static string Format(ulong lsn) => new Lsn(lsn).ToString();
}
