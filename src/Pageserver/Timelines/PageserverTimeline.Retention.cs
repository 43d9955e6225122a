using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Timelines;

internal sealed partial class PageserverTimeline
{
    /// <summary>
    /// Removes images and WAL older than the retention window, keeping what a basebackup inside the
    /// window needs: the newest image that ends before the window starts (the anchor), every later
    /// image, and the WAL from the anchor's redo point on. Only WAL already in object storage goes.
    /// </summary>
    private async Task ApplyRetentionAsync(CancellationToken ct)
    {
        var horizon = LastCommitAtOrBefore(_time.GetUtcNow() - _options.Retention)?.End;
        if (horizon is null) return;
        var images = Images.All;
        var anchor = images.LastOrDefault(i => i.End <= horizon.Value);
        if (anchor is null) return;

        var oldImages = images.Where(i => i.End < anchor.End).ToList();
        var keepFrom = Wal.Geometry.SegmentNumber(anchor.Redo);
        if (_remote != null) keepFrom = Math.Min(keepFrom, Wal.Geometry.SegmentNumber(Metadata.RemoteConsistent));
        var oldSegments = Wal.Segments().Where(s => s < keepFrom).ToList();
        if (oldImages.Count == 0 && oldSegments.Count == 0) return;

        foreach (var image in oldImages) Images.Remove(image);
        lock (_lock) foreach (var segment in oldSegments) _indexes.Remove(segment);
        foreach (var segment in oldSegments)
        {
            var name = Wal.FileName(segment);
            Wal.Delete(segment);
            File.Delete(Path.Combine(Wal.Directory, SegmentIndex.FileName(name)));
        }
        if (_remote != null)
        {
            // The manifest stops listing them first; then the objects go.
            var forgotten = _remote.Forget(oldImages.Select(i => i.FileName)
                .Concat(oldSegments.SelectMany(s => new[] { Wal.FileName(s), SegmentIndex.FileName(Wal.FileName(s)) })));
            _remoteDirty = true;
            await UploadAsync(ct);
            await _remote.DeleteAsync(forgotten, ct);
        }
        _metrics.Deleted(TenantId, TimelineId, "image", oldImages.Count);
        _metrics.Deleted(TenantId, TimelineId, "wal_segment", oldSegments.Count);
        _logger.LogInformation("retention of {TenantId}/{TimelineId}: removed {Images} images and {Segments} WAL segments below {Lsn} (horizon {Horizon})",
            TenantId, TimelineId, oldImages.Count, oldSegments.Count, anchor.Redo, horizon.Value);
    }
}
