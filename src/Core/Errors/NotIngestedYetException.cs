namespace Storage.Core.Errors;

/// <summary>
/// A pageserver has not ingested the WAL a request needs yet (it is committed, only not here yet):
/// the caller retries. Names how far ingest got.
/// </summary>
public sealed class NotIngestedYetException(string message, Lsn ingested) : ServiceException(FailureKind.Unavailable, message)
{
    public const string IngestedDetail = "ingested-lsn";

    public Lsn Ingested { get; } = ingested;

    public override IReadOnlyDictionary<string, string> Details =>
        new Dictionary<string, string> { [IngestedDetail] = Ingested.ToString() };
}
