using System.Globalization;

namespace Storage.Core.Errors;

/// <summary>A safekeeper at a higher term refused a proposer: that proposer is fenced for good.</summary>
public sealed class StaleTermException(ulong safekeeperTerm, string message) : ServiceException(FailureKind.Superseded, message)
{
    public const string TermDetail = "safekeeper-term";

    public ulong SafekeeperTerm { get; } = safekeeperTerm;

    public override IReadOnlyDictionary<string, string> Details =>
        new Dictionary<string, string> { [TermDetail] = SafekeeperTerm.ToString(CultureInfo.InvariantCulture) };
}
