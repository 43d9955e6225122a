using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// The timelines' part of the host's life: they are loaded (with a storage controller: registered
/// and placed) before the server takes requests (hosted services start before Kestrel), and
/// stopped, with every timeline's loops, after it stopped taking them.
/// </summary>
internal sealed class TimelineLifetime(TimelineManager timelines, ILogger<TimelineLifetime> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await timelines.LoadAsync(ct);
        log.LogInformation("{Attached} attached and {Secondary} secondary timelines loaded", timelines.All.Count, timelines.Secondaries.Count);
    }

    public async Task StopAsync(CancellationToken ct) => await timelines.DisposeAsync();
}
