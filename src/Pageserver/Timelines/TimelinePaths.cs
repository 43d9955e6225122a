namespace Storage.Pageserver.Timelines;

/// <summary>Where one timeline's files are on the pageserver's disk.</summary>
internal sealed record TimelinePaths(string Root)
{
    public static TimelinePaths For(string dataDirectory, string tenantId, string timelineId) =>
        new(Path.Combine(dataDirectory, "tenants", tenantId, "timelines", timelineId));

    public string Metadata => Path.Combine(Root, "timeline.meta");
    public string Wal => Path.Combine(Root, "wal");
    public string Images => Path.Combine(Root, "images");
    public string Replay => Path.Combine(Root, "replay");
    public string Scratch => Path.Combine(Root, "scratch");
    /// <summary>The layers a secondary (or an attach in progress) has downloaded: written only by <see cref="Remote.LayerMirror"/>.</summary>
    public string DownloadedLayers => Path.Combine(Root, "layers.downloaded");
}
