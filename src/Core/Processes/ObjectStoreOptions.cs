using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>
/// The object store flags every service that uses one shares: <c>--remote-storage DIR</c> (a local
/// folder) or <c>--s3-endpoint URL --s3-bucket NAME [--s3-access-key K --s3-secret-key S
/// --s3-region R]</c>; none when neither is given.
/// </summary>
public sealed record ObjectStoreOptions : IValidatedOptions
{
    [Flag("--remote-storage", "object storage in a local folder")]
    public string? RemoteStorage { get; init; }

    [Flag("--s3-endpoint", "object storage in S3 (MinIO, AWS) at this URL")]
    public string? S3Endpoint { get; init; }

    [Flag("--s3-bucket", "the S3 bucket (created if missing)")]
    public string? S3Bucket { get; init; }

    [Flag("--s3-access-key", "S3 access key")]
    public string S3AccessKey { get; init; } = "S3RVER";

    [Flag("--s3-secret-key", "S3 secret key")]
    public string S3SecretKey { get; init; } = "S3RVER";

    [Flag("--s3-region", "S3 region")]
    public string S3Region { get; init; } = "us-east-1";

    public IEnumerable<string> Validate()
    {
        if (RemoteStorage is not null && S3Endpoint is not null) yield return "--remote-storage and --s3-endpoint contradict each other: give one";
        if (S3Endpoint is not null && string.IsNullOrEmpty(S3Bucket)) yield return "--s3-endpoint needs --s3-bucket";
    }
}
