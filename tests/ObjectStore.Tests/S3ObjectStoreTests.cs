using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging.Testing;
using Storage.Testing;

namespace Storage.ObjectStore.Tests;

/// <summary>One s3rver for the test class; each test gets its own bucket.</summary>
public sealed class S3rverFixture : IAsyncLifetime
{
    public S3rverServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await S3rverServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();

    public static S3ObjectStoreOptions Options(S3rverServer server, string bucket) => new()
    {
        ServiceUrl = server.ServiceUrl,
        Bucket = bucket,
        AccessKey = S3rverServer.AccessKey,
        SecretKey = S3rverServer.SecretKey,
        PartSize = S3ObjectStoreOptions.MinPartSize,
        ListPageSize = 40, // several pages in the list test
        RetryDelay = TimeSpan.FromMilliseconds(100),
        MaxRetryDelay = TimeSpan.FromSeconds(1),
        MaxRetries = 12, // about 10 s: enough for s3rver to restart
    };

    public static string NewBucket() => "b" + Guid.NewGuid().ToString("N")[..20];
}

public sealed class S3ObjectStoreTests(S3rverFixture fixture) : ObjectStoreContract, IClassFixture<S3rverFixture>
{
    private readonly string _bucket = S3rverFixture.NewBucket();
    private S3ObjectStoreOptions Options => S3rverFixture.Options(fixture.Server, _bucket);

    protected override async Task<IObjectStore> CreateStoreAsync()
    {
        var store = new S3ObjectStore(Options);
        await store.EnsureBucketAsync();
        return store;
    }

    protected override void CorruptStoredByte(string key, long offset) =>
        LocalFsObjectStoreTests.FlipByte(fixture.Server.ObjectFile(_bucket, key), offset);

    protected override Task AssertNoLeftoversAsync()
    {
        // s3rver can neither list nor abort multipart uploads (it answers the abort with 405): check
        // that the abort was sent, the only request on an upload id without a part number here.
        Assert.Matches(@"/f/obj\?uploadId=[0-9a-f]+ ", fixture.Server.ReadLog());
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_checksum_is_stored_as_metadata_also_for_multipart_objects()
    {
        const int size = 2 * PartSize + 3;
        await Store.PutAsync("m/obj", new GeneratedStream(size));

        using var raw = S3ObjectStore.CreateClient(Options);
        var head = await raw.GetObjectMetadataAsync(_bucket, "m/obj");
        Assert.Equal(TestData.Crc(size).ToString("X8"), head.Metadata[S3ObjectStore.ChecksumMetadata]);
    }

    [Theory]
    [InlineData("DEADBEEF", "CRC-32C mismatch")]
    [InlineData(null, "no x-amz-meta-crc32c")]
    [InlineData("not-hex", "is not a CRC")]
    public async Task An_object_with_a_wrong_or_missing_checksum_is_reported_corrupt(string? stored, string reason)
    {
        using var raw = S3ObjectStore.CreateClient(Options);
        var put = new PutObjectRequest { BucketName = _bucket, Key = "w/obj", InputStream = new MemoryStream(TestData.Bytes(1000)), UseChunkEncoding = false };
        if (stored is not null) put.Metadata[S3ObjectStore.ChecksumMetadata] = stored;
        await raw.PutObjectAsync(put);

        var error = await Assert.ThrowsAsync<ObjectCorruptException>(async () => await TestData.ReadAllAsync(await Store.GetAsync("w/obj")));
        Assert.Contains(reason, error.Reason);
    }

    [Fact]
    public async Task A_client_error_is_not_retried()
    {
        var log = new FakeLogger();
        using var store = new S3ObjectStore(S3rverFixture.Options(fixture.Server, "no-such-bucket"), log);

        var error = await Assert.ThrowsAsync<AmazonS3Exception>(() => store.PutAsync("k", new MemoryStream([1])));

        Assert.Equal("NoSuchBucket", error.ErrorCode);
        Assert.DoesNotContain(log.Collector.GetSnapshot(), r => r.Message.Contains("retry")); // every retry is logged
    }
}
