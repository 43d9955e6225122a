using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Grpc.Core;
using Storage.Core.Errors;
using Storage.Core.Rpc;
using Storage.Proto.Compute;
using Storage.Proto.Pageserver;

namespace Storage.Compute;

/// <summary>
/// What an idle VM holds ready for one timeline: that timeline's newest image, unpacked (a
/// basebackup at the image's end) in a directory of its own. An attach of the timeline takes the
/// directory as its data directory and fetches only the WAL since the image, instead of the whole
/// database. Prepares run one at a time; an attach cancels one in flight.
/// </summary>
internal sealed class PreparedImageStore
{
    // Preparing is background work on an idle VM: a pageserver busy taking images gets time to answer.
    private static readonly TimeSpan PageserverTimeout = TimeSpan.FromSeconds(30);
    private readonly string _ready;
    private readonly string _partial;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly object _lock = new();
    private CancellationTokenSource _cancel = new();
    private Prepared? _prepared;

    private sealed record Prepared(string TenantId, string TimelineId, ImageIdentity Image);

    /// <param name="directory">On the data directory's file system: taking the prepared copy is a rename.</param>
    public PreparedImageStore(string directory, ILogger log)
    {
        _ready = Path.Combine(directory, "prepared");
        _partial = Path.Combine(directory, "preparing");
        _log = log;
        // What a previous life left is not known to be whole.
        if (Directory.Exists(directory))
            foreach (var leftover in Directory.GetDirectories(directory, "prepar*").Concat(Directory.GetDirectories(directory, "*.old-*")))
                Delete(leftover);
    }

    /// <summary>What is held ready now (empty when nothing is).</summary>
    public PreparedImage Current
    {
        get
        {
            lock (_lock)
                return _prepared is { } p
                    ? new PreparedImage { TenantId = p.TenantId, TimelineId = p.TimelineId, ImageLsn = p.Image.End.Value, ImageCrc32C = p.Image.Crc32C }
                    : new PreparedImage();
        }
    }

    /// <summary>The token a prepare starting now runs under; <see cref="CancelAsync"/> cancels it.</summary>
    public CancellationToken Token { get { lock (_lock) return _cancel.Token; } }

    /// <summary>
    /// Holds the timeline's newest image ready: asks the first pageserver serving the timeline for
    /// its newest image and, unless that one is held already, unpacks a basebackup at its end.
    /// </summary>
    /// <param name="token">The tenant's compute token the pageserver calls carry.</param>
    public async Task<PreparedImage> PrepareAsync(string tenant, string timeline, IReadOnlyList<Uri> pageservers, string token, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var (pageserver, newest) = await NewestImageAsync(tenant, timeline, pageservers, token, ct);
            lock (_lock)
                if (_prepared is { } p && p.TenantId == tenant && p.TimelineId == timeline && p.Image == newest) return Current;
            Delete(_partial);
            var source = new PageserverBasebackupSource([pageserver], PageserverTimeout, token);
            var started = DateTime.UtcNow;
            var image = await source.FetchAsync(tenant, timeline, newest.End, _partial, ct);
            string? old;
            lock (_lock)
            {
                ct.ThrowIfCancellationRequested();
                _prepared = null;
                old = MoveAside(_ready);
                Directory.Move(_partial, _ready);
                _prepared = new Prepared(tenant, timeline, image);
            }
            Delete(old);
            _log.LogInformation("prepared {TenantId}/{TimelineId}: image {Image} from {Pageserver} unpacked in {Millis:F0} ms",
                tenant, timeline, image, pageserver, (DateTime.UtcNow - started).TotalMilliseconds);
            return Current;
        }
        catch
        {
            Delete(_partial);
            throw;
        }
        finally { _gate.Release(); }
    }

    /// <summary>The first pageserver that serves the timeline (not a secondary), and its newest image.</summary>
    private static async Task<(Uri Pageserver, ImageIdentity Newest)> NewestImageAsync(string tenant, string timeline, IReadOnlyList<Uri> pageservers, string token, CancellationToken ct)
    {
        var reasons = new List<string>();
        foreach (var pageserver in pageservers)
        {
            try
            {
                var info = await PageserverClient.GetTimelineAsync(pageserver, tenant, timeline, PageserverTimeout, ct, token);
                if (info.Mode == LocationMode.Secondary) { reasons.Add($"{pageserver}: secondary"); continue; }
                if (info.LatestImageLsn == 0) throw new PreconditionFailedException($"{pageserver} holds no image of {tenant}/{timeline} yet");
                return (pageserver, new ImageIdentity(new Lsn(info.LatestImageLsn), info.LatestImageCrc32C));
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.NotFound)
            {
                reasons.Add($"{pageserver}: {RpcErrors.Describe(e)}");
            }
        }
        throw new TemporarilyUnavailableException($"no pageserver serves {tenant}/{timeline}: {string.Join("; ", reasons)}");
    }

    /// <summary>Cancels a prepare in flight and waits until it has stopped.</summary>
    public async Task CancelAsync()
    {
        CancellationTokenSource old;
        lock (_lock) (old, _cancel) = (_cancel, new CancellationTokenSource());
        await old.CancelAsync();
        await _gate.WaitAsync();
        _gate.Release();
        old.Dispose();
    }

    /// <summary>
    /// Moves the prepared copy to <paramref name="dataDirectory"/> when it is of this timeline and
    /// not past <paramref name="startLsn"/>, and returns its image; otherwise drops it (an attached
    /// VM has no use for it) and returns null. Call after <see cref="CancelAsync"/>.
    /// </summary>
    public ImageIdentity? TakeInto(string tenant, string timeline, Lsn startLsn, string dataDirectory)
    {
        string? unused;
        ImageIdentity? taken = null;
        lock (_lock)
        {
            var prepared = _prepared;
            _prepared = null;
            if (prepared is null || prepared.TenantId != tenant || prepared.TimelineId != timeline || prepared.Image.End > startLsn || !Directory.Exists(_ready))
                unused = MoveAside(_ready);
            else
            {
                unused = MoveAside(dataDirectory);
                Directory.Move(_ready, dataDirectory);
                taken = prepared.Image;
            }
        }
        Delete(unused); // outside the lock: heartbeats read Current, and a database takes a while to delete
        return taken;
    }

    /// <summary>Drops what is held (at shutdown); call after <see cref="CancelAsync"/>.</summary>
    public void Clear()
    {
        string? unused;
        lock (_lock)
        {
            _prepared = null;
            unused = MoveAside(_ready);
        }
        Delete(unused);
        Delete(_partial);
    }

    /// <summary>Renames <paramref name="directory"/> (if it exists) to a name of its own, to be deleted outside the lock.</summary>
    private static string? MoveAside(string directory)
    {
        if (!Directory.Exists(directory)) return null;
        var aside = $"{directory}.old-{Guid.NewGuid():N}";
        Directory.Move(directory, aside);
        return aside;
    }

    private static void Delete(string? directory)
    {
        if (directory is not null && Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
    }
}
