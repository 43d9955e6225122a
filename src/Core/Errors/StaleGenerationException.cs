using System.Globalization;

namespace Storage.Core.Errors;

/// <summary>
/// The storage controller issued a newer generation of a timeline than the one a pageserver holds
/// (it attached the timeline elsewhere): the holder of the old one must not delete anything.
/// </summary>
public sealed class StaleGenerationException(string tenantId, string timelineId, ulong generation)
    : ServiceException(FailureKind.Superseded,
        $"generation {generation} of {tenantId}/{timelineId} is no longer current (the storage controller attached it elsewhere): deletions refused")
{
    public const string GenerationDetail = "stale-generation";

    public ulong Generation { get; } = generation;

    public override IReadOnlyDictionary<string, string> Details =>
        new Dictionary<string, string> { [GenerationDetail] = Generation.ToString(CultureInfo.InvariantCulture) };
}
