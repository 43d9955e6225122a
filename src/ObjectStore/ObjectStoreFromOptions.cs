using Microsoft.Extensions.Logging;

namespace Storage.ObjectStore;

/// <summary>
/// The object store a service's command line names: <c>--remote-storage DIR</c> (a local folder)
/// or <c>--s3-endpoint URL --s3-bucket NAME [--s3-access-key K --s3-secret-key S --s3-region R]</c>;
/// none when neither is given. An S3 bucket is created if missing (MinIO or s3rver started empty).
/// </summary>
public static class ObjectStoreFromOptions
{
    public static async Task<IObjectStore?> CreateAsync(Func<string, string?> option, ILoggerFactory loggers, CancellationToken ct = default)
    {
        if (option("remote-storage") is { } folder) return new LocalFsObjectStore(Path.GetFullPath(folder));
        if (option("s3-endpoint") is not { } endpoint) return null;
        var store = new S3ObjectStore(new S3ObjectStoreOptions
        {
            ServiceUrl = endpoint,
            Bucket = option("s3-bucket") ?? throw new ArgumentException("--s3-endpoint needs --s3-bucket"),
            AccessKey = option("s3-access-key") ?? "S3RVER",
            SecretKey = option("s3-secret-key") ?? "S3RVER",
            Region = option("s3-region") ?? "us-east-1",
        }, loggers.CreateLogger("Storage.ObjectStore.S3"));
        await store.EnsureBucketAsync(ct);
        return store;
    }
}
