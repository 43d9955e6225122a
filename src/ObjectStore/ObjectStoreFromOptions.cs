using Microsoft.Extensions.Logging;
using Storage.Core.Processes;

namespace Storage.ObjectStore;

/// <summary>The object store <see cref="ObjectStoreOptions"/> name. An S3 bucket is created if missing (MinIO or s3rver started empty).</summary>
public static class ObjectStoreFromOptions
{
    public static async Task<IObjectStore?> CreateAsync(ObjectStoreOptions options, ILoggerFactory loggers, CancellationToken ct = default)
    {
        if (options.RemoteStorage is { } folder) return new LocalFsObjectStore(Path.GetFullPath(folder));
        if (options.S3Endpoint is not { } endpoint) return null;
        var store = new S3ObjectStore(new S3ObjectStoreOptions
        {
            ServiceUrl = endpoint,
            Bucket = options.S3Bucket ?? throw new ArgumentException("--s3-endpoint needs --s3-bucket"),
            AccessKey = options.S3AccessKey,
            SecretKey = options.S3SecretKey,
            Region = options.S3Region,
        }, loggers.CreateLogger("Storage.ObjectStore.S3"));
        await store.EnsureBucketAsync(ct);
        return store;
    }

    /// <summary>The same from a service's raw options by name (for services not yet on typed options).</summary>
    public static Task<IObjectStore?> CreateAsync(Func<string, string?> option, ILoggerFactory loggers, CancellationToken ct = default) =>
        CreateAsync(new ObjectStoreOptions
        {
            RemoteStorage = option("remote-storage"),
            S3Endpoint = option("s3-endpoint"),
            S3Bucket = option("s3-bucket"),
            S3AccessKey = option("s3-access-key") ?? "S3RVER",
            S3SecretKey = option("s3-secret-key") ?? "S3RVER",
            S3Region = option("s3-region") ?? "us-east-1",
        }, loggers, ct);
}
