namespace Storage.ObjectStore.Tests;

public sealed class LocalFsObjectStoreTests : ObjectStoreContract
{
    private readonly string _root = Directory.CreateTempSubdirectory("objstore-").FullName;
    private LocalFsObjectStore Local => (LocalFsObjectStore)Store;

    protected override Task<IObjectStore> CreateStoreAsync() => Task.FromResult<IObjectStore>(new LocalFsObjectStore(_root));

    protected override void CorruptStoredByte(string key, long offset) => FlipByte(Local.PathOf(key), offset);

    protected override Task AssertNoLeftoversAsync()
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_root, ObjectKey.Reserved)));
        return Task.CompletedTask;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_damaged_trailer_or_a_truncated_file_is_reported_corrupt()
    {
        await Store.PutAsync("a", new MemoryStream(TestData.Bytes(100)));
        await Store.PutAsync("b", new MemoryStream(TestData.Bytes(100)));
        await Store.PutAsync("c", new MemoryStream(TestData.Bytes(100)));
        FlipByte(Local.PathOf("a"), 100); // the trailer's magic
        FlipByte(Local.PathOf("b"), 104); // the trailer's length
        using (var file = File.OpenWrite(Local.PathOf("c"))) file.SetLength(10);

        Assert.Contains("magic", (await Assert.ThrowsAsync<ObjectCorruptException>(() => Store.GetAsync("a"))).Reason);
        Assert.Contains("the trailer says", (await Assert.ThrowsAsync<ObjectCorruptException>(() => Store.GetAsync("b"))).Reason);
        Assert.Contains("fewer than its trailer", (await Assert.ThrowsAsync<ObjectCorruptException>(() => Store.GetAsync("c"))).Reason);
    }

    [Fact]
    public async Task Objects_survive_reopening_and_temp_files_of_a_crashed_put_are_removed()
    {
        await Store.PutAsync("x/y", new MemoryStream([1, 2, 3]));
        var stale = Path.Combine(_root, ObjectKey.Reserved, "crashed-put");
        File.WriteAllBytes(stale, [9, 9]);

        using var reopened = new LocalFsObjectStore(_root);

        Assert.False(File.Exists(stale));
        Assert.Equal([1, 2, 3], await TestData.ReadAllAsync(await reopened.GetAsync("x/y")));
        Assert.Equal(["x/y"], await reopened.ListAsync("").Select(o => o.Key).ToArrayAsync());
    }

    internal static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        int b = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(b ^ 0x40));
    }
}
