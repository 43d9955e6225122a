namespace Storage.ObjectStore;

/// <summary>Where and how <see cref="S3ObjectStore"/> talks to an S3-protocol server (AWS, MinIO, s3rver).</summary>
public sealed record S3ObjectStoreOptions
{
    /// <summary>The server's base URL, e.g. http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com.</summary>
    public required string ServiceUrl { get; init; }
    public required string Bucket { get; init; }
    public required string AccessKey { get; init; }
    public required string SecretKey { get; init; }
    /// <summary>The region requests are signed for (MinIO and s3rver accept any).</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>S3's smallest part (except the last).</summary>
    public const int MinPartSize = 5 << 20;

    /// <summary>
    /// Objects up to this size are sent in one PUT; larger ones in a multipart upload of parts this
    /// size. It is also the most a put holds in memory (a part is kept so that it can be re-sent).
    /// </summary>
    public int PartSize { get; init; } = 8 << 20;

    /// <summary>Keys per list request (S3's maximum is 1000).</summary>
    public int ListPageSize { get; init; } = 1000;

    /// <summary>Retries of a request that failed transiently (network, timeout, 5xx, throttling).</summary>
    public int MaxRetries { get; init; } = 8;
    /// <summary>The first retry delay; it doubles (with jitter) up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>One HTTP request's time limit (a timeout is retried).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    internal void Validate()
    {
        if (!Uri.TryCreate(ServiceUrl, UriKind.Absolute, out _)) throw new ArgumentException($"ServiceUrl '{ServiceUrl}' is not an absolute URL");
        if (string.IsNullOrEmpty(Bucket)) throw new ArgumentException("Bucket is required");
        if (PartSize < MinPartSize) throw new ArgumentOutOfRangeException(nameof(PartSize), PartSize, $"S3 parts are at least {MinPartSize} bytes");
        if (ListPageSize is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(ListPageSize), ListPageSize, "1 to 1000");
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRetries);
    }
}
