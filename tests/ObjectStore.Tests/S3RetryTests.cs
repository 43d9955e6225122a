using Storage.Testing;

namespace Storage.ObjectStore.Tests;

/// <summary>The S3 backend rides out a server that is down for a while (killed, restarted, late).</summary>
public sealed class S3RetryTests : IAsyncLifetime
{
    private const int PartSize = S3ObjectStoreOptions.MinPartSize;
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(1.5);

    private readonly S3rverServer _server = S3rverServer.Create();
    private readonly string _bucket = S3rverFixture.NewBucket();
    private S3ObjectStore _store = null!;

    public Task InitializeAsync()
    {
        // About a minute of retries: the outage plus a node start, which a loaded machine can make slow.
        _store = new S3ObjectStore(S3rverFixture.Options(_server, _bucket) with { MaxRetries = 60 });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _store.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Requests_sent_before_the_server_is_up_succeed_once_it_is()
    {
        var work = Task.Run(async () =>
        {
            await _store.EnsureBucketAsync();
            await _store.PutAsync("late/obj", new MemoryStream([1, 2, 3]));
        });
        await Task.Delay(Outage);
        Assert.False(work.IsCompleted, "nothing can succeed while no server listens");

        await _server.RestartAsync();
        await work;

        Assert.Equal([1, 2, 3], await TestData.ReadAllAsync(await _store.GetAsync("late/obj")));
    }

    [Fact]
    public async Task Get_list_and_delete_ride_out_a_server_restart()
    {
        await _server.RestartAsync();
        await _store.EnsureBucketAsync();
        await _store.PutAsync("k/a", new MemoryStream(TestData.Bytes(1000)));
        await _store.PutAsync("k/b", new MemoryStream(TestData.Bytes(10)));

        await _server.KillAsync();
        var get = Task.Run(async () => await TestData.ReadAllAsync(await _store.GetAsync("k/a")));
        var list = Task.Run(async () => await _store.ListAsync("k/a").Select(o => o.Key).ToArrayAsync());
        var delete = Task.Run(() => _store.DeleteAsync("k/b"));
        await Task.Delay(Outage);
        Assert.False(get.IsCompleted || list.IsCompleted || delete.IsCompleted);
        await _server.RestartAsync();

        Assert.Equal(TestData.Bytes(1000), await get);
        Assert.Equal(["k/a"], await list);
        await delete;
        Assert.Null(await _store.HeadAsync("k/b"));
    }

    [Fact]
    public async Task A_multipart_put_survives_the_server_being_killed_between_parts()
    {
        await _server.RestartAsync();
        await _store.EnsureBucketAsync();
        const long size = 3L * PartSize + 77;
        Task? restart = null;
        var source = new GeneratedStream(size, onRead: async position =>
        {
            if (restart is not null || position < PartSize + 1) return; // the first part went up
            await _server.KillAsync();
            restart = Task.Delay(Outage).ContinueWith(_ => _server.RestartAsync()).Unwrap();
        });

        await _store.PutAsync("mp/obj", source);
        await restart!;

        var (length, crc) = await TestData.DigestAsync(await _store.GetAsync("mp/obj"));
        Assert.Equal((size, TestData.Crc(size)), (length, crc));
    }

    [Fact]
    public async Task It_gives_up_when_the_server_stays_down_past_the_retry_budget()
    {
        using var impatient = new S3ObjectStore(S3rverFixture.Options(_server, _bucket) with { MaxRetries = 2, RetryDelay = TimeSpan.FromMilliseconds(50) });

        var error = await Assert.ThrowsAnyAsync<Exception>(() => impatient.PutAsync("k", new MemoryStream([1])));

        Assert.True(error is HttpRequestException || error.InnerException is HttpRequestException, error.ToString());
    }
}
