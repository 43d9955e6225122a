using Storage.Core;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// How far a safekeeper may delete its WAL (ARCHITECTURE invariant 6): only below
/// min(pageserver remote_consistent_lsn, backup_lsn, commit_lsn), only whole segments, and never
/// the segment holding the flush position.
/// </summary>
internal static class TrimHorizon
{
    /// <summary>WAL below the returned LSN may go; zero (nothing) while no pageserver has reported.</summary>
    public static Lsn Compute(Lsn remoteConsistent, Lsn backup, Lsn commit, Lsn flush)
    {
        if (!remoteConsistent.IsValid) return Lsn.Zero;
        return Lsn.Min(Lsn.Min(remoteConsistent, backup), Lsn.Min(commit, flush));
    }

    /// <summary>
    /// The first LSN to keep: the start of the segment holding the horizon (segments before it lie
    /// wholly below it), never before the current local start.
    /// </summary>
    public static Lsn NewLocalStart(Lsn horizon, Lsn localStart, WalGeometry geometry) =>
        Lsn.MaxOf(localStart, geometry.SegmentStartOf(horizon));
}
