namespace Storage.ObjectStore.Tests;

/// <summary>
/// The behaviour every <see cref="IObjectStore"/> backend must have; each backend's test class
/// derives from this and says how to make a store and how to damage a stored object.
/// </summary>
public abstract class ObjectStoreContract : IAsyncLifetime
{
    /// <summary>The S3 store's part size in these tests (S3's minimum): larger objects go multipart.</summary>
    protected const int PartSize = S3ObjectStoreOptions.MinPartSize;

    protected IObjectStore Store { get; private set; } = null!;

    protected abstract Task<IObjectStore> CreateStoreAsync();

    /// <summary>Flips one byte of the object's content where the backend keeps it, behind the store's back.</summary>
    protected abstract void CorruptStoredByte(string key, long offset);

    /// <summary>Checks that nothing of failed puts is left in the backend (temp files, unfinished uploads).</summary>
    protected abstract Task AssertNoLeftoversAsync();

    public async Task InitializeAsync() => Store = await CreateStoreAsync();

    public virtual Task DisposeAsync()
    {
        Store.Dispose();
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4103)]
    [InlineData(PartSize)] // the largest single put
    [InlineData(2 * PartSize)] // two full parts: the last part is found by reading ahead
    [InlineData(2 * PartSize + 12345)]
    public async Task Put_then_get_returns_the_same_bytes(int size)
    {
        await Store.PutAsync("t/obj", new GeneratedStream(size, seed: size));

        var stream = await Store.GetAsync("t/obj");
        Assert.Equal(size, stream.Length);
        Assert.Equal(TestData.Bytes(size, seed: size), await TestData.ReadAllAsync(stream));
        Assert.Equal(size, (await Store.HeadAsync("t/obj"))!.Size);
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(PartSize - 5, 10)] // across the parts of a multipart object
    [InlineData(7, 2 * PartSize)] // cut at the end
    [InlineData(2 * PartSize + 997, 10)] // the last 3 bytes
    [InlineData(2 * PartSize + 1000, 10)] // at the end: empty
    [InlineData(2 * PartSize + 5000, 10)] // past the end: empty
    [InlineData(5, 0)]
    public async Task Range_get_returns_the_bytes_of_the_range_cut_at_the_end(long offset, long length)
    {
        const int size = 2 * PartSize + 1000;
        await Store.PutAsync("r/obj", new GeneratedStream(size));

        var bytes = await TestData.ReadAllAsync(await Store.GetRangeAsync("r/obj", offset, length));

        long expected = Math.Clamp(size - offset, 0, length);
        Assert.Equal(expected, bytes.Length);
        for (int i = 0; i < bytes.Length; i++)
            if (bytes[i] != TestData.At(1, offset + i)) Assert.Fail($"byte {offset + i} differs");
    }

    [Fact]
    public async Task List_returns_the_keys_under_a_prefix_in_order_with_sizes()
    {
        // (No key here sorts between "tenant/b" and "tenant/b/": s3rver lists "b/..." before "b.c",
        // unlike S3, which sorts by bytes.)
        var keys = Enumerable.Range(0, 150).Select(i => $"tenant/a/{i:D3}")
            .Concat(["tenant/b/x/y/z", "tenant/bb", "tenant/b_c", "tenant2/a/0", "tenantX"]).ToArray();
        foreach (var (key, i) in keys.Select((k, i) => (k, i)).OrderBy(_ => Random.Shared.Next()))
            await Store.PutAsync(key, new MemoryStream(TestData.Bytes(i)));
        var sizeOf = keys.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => (long)p.i);

        async Task<string[]> ListAsync(string prefix)
        {
            var found = new List<string>();
            await foreach (var info in Store.ListAsync(prefix))
            {
                Assert.Equal(sizeOf[info.Key], info.Size);
                found.Add(info.Key);
            }
            return found.ToArray();
        }
        string[] Expected(string prefix) => keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();

        foreach (var prefix in new[] { "", "tenant/", "tenant/a/", "tenant/a/14", "tenant/b", "tenant/b/", "tenant", "nothing/", "tenant/a/999" })
            Assert.Equal(Expected(prefix), await ListAsync(prefix));
        Assert.Equal(150, (await ListAsync("tenant/a/")).Length);
    }

    [Fact]
    public async Task Delete_removes_the_object_and_deleting_again_is_harmless()
    {
        await Store.PutAsync("d/obj", new MemoryStream([1, 2, 3]));
        await Store.PutAsync("d/other", new MemoryStream([4]));

        await Store.DeleteAsync("d/obj");

        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("d/obj"));
        Assert.Null(await Store.HeadAsync("d/obj"));
        Assert.Equal(["d/other"], await Store.ListAsync("d/").Select(o => o.Key).ToArrayAsync());
        await Store.DeleteAsync("d/obj");
        await Store.DeleteAsync("never/existed");
    }

    [Fact]
    public async Task Put_over_an_object_replaces_it()
    {
        await Store.PutAsync("o/obj", new MemoryStream(TestData.Bytes(100, seed: 1)));
        await Store.PutAsync("o/obj", new MemoryStream(TestData.Bytes(50, seed: 2)));

        Assert.Equal(TestData.Bytes(50, seed: 2), await TestData.ReadAllAsync(await Store.GetAsync("o/obj")));
        var listed = Assert.Single(await Store.ListAsync("o/").ToArrayAsync());
        Assert.Equal(50, listed.Size);
    }

    [Fact]
    public async Task A_missing_key_is_reported_as_such()
    {
        var get = await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetAsync("no/such/key"));
        Assert.Equal("no/such/key", get.Key);
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetRangeAsync("no/such/key", 0, 10));
        await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.GetRangeAsync("no/such/key", 0, 0));
        Assert.Null(await Store.HeadAsync("no/such/key"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/absolute")]
    [InlineData("..")]
    [InlineData("a/../b")]
    [InlineData("./a")]
    [InlineData("a//b")]
    [InlineData("a/")]
    [InlineData("a\\b")]
    [InlineData("a\0b")]
    [InlineData(".objstore-tmp/x")]
    public async Task Invalid_keys_are_refused_with_the_reason(string key)
    {
        var put = await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(key, new MemoryStream([1])));
        Assert.Contains("invalid object key", put.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetAsync(key));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetRangeAsync(key, 0, 1));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.HeadAsync(key));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.DeleteAsync(key));
    }

    [Theory]
    [InlineData("/a")]
    [InlineData("../")]
    [InlineData("a/../")]
    [InlineData("a//")]
    public async Task Invalid_list_prefixes_are_refused(string prefix)
    {
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.ListAsync(prefix).ToArrayAsync());
    }

    [Theory]
    [InlineData(4103, 0)]
    [InlineData(4103, 2000)]
    [InlineData(4103, 4102)]
    [InlineData(2 * PartSize + 10, PartSize + 1)]
    public async Task A_corrupted_object_fails_its_read_before_the_end(int size, long flipped)
    {
        await Store.PutAsync("c/obj", new GeneratedStream(size));
        CorruptStoredByte("c/obj", flipped);

        var stream = await Store.GetAsync("c/obj");
        long delivered = 0;
        var error = await Assert.ThrowsAsync<ObjectCorruptException>(async () =>
            await TestData.DigestAsync(stream, position => { delivered = position; return Task.CompletedTask; }));
        Assert.Equal("c/obj", error.Key);
        Assert.Contains("CRC-32C mismatch", error.Reason);
        Assert.True(delivered < size, "the reader must not reach the end of corrupt content");
    }

    [Fact]
    public async Task A_put_whose_source_fails_keeps_the_previous_object_and_leaves_nothing()
    {
        await Store.PutAsync("f/obj", new MemoryStream(TestData.Bytes(10, seed: 7)));
        var failing = new GeneratedStream(3L * PartSize, onRead: position =>
            position > 2 * PartSize ? throw new IOException("source broke") : Task.CompletedTask);

        await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("f/obj", failing));
        await Assert.ThrowsAsync<IOException>(() => Store.PutAsync("f/new", new GeneratedStream(100, onRead: _ => throw new IOException("source broke"))));

        Assert.Equal(TestData.Bytes(10, seed: 7), await TestData.ReadAllAsync(await Store.GetAsync("f/obj")));
        Assert.Equal(["f/obj"], await Store.ListAsync("").Select(o => o.Key).ToArrayAsync());
        await AssertNoLeftoversAsync();
    }

    [Fact]
    public async Task A_64_MiB_object_streams_through_without_being_held_in_memory()
    {
        const long size = 64L << 20;
        const long limit = 24L << 20; // well below the object: at most a part or a copy buffer or two
        long baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        Func<long, Task> Probe() // measures the heap every 16 MiB of a stream
        {
            long next = 16L << 20;
            return position =>
            {
                if (position < next) return Task.CompletedTask;
                next += 16L << 20;
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
                return Task.CompletedTask;
            };
        }

        await Store.PutAsync("big/obj", new GeneratedStream(size, seed: 64, onRead: Probe()));
        var (length, crc) = await TestData.DigestAsync(await Store.GetAsync("big/obj"), Probe());

        Assert.Equal(size, length);
        Assert.Equal(TestData.Crc(size, seed: 64), crc);
        Assert.True(peak is > 0 and < limit, $"the managed heap grew by {peak >> 20} MiB while streaming 64 MiB");
    }
}
