using Storage.Core.Storage;

namespace Storage.Core.Tests;

/// <summary><see cref="ChecksummedJsonState{TDocument}"/>: a change is visible only once it is on disk.</summary>
public sealed class ChecksummedJsonStateTests : IDisposable
{
    public sealed class Document
    {
        public Dictionary<string, ulong> Generations { get; init; } = new();
        public int Changes { get; set; }
    }

    private sealed class Store(string path) : ChecksummedJsonState<Document>(path, "TJST", 1);

    private readonly string _root = Directory.CreateTempSubdirectory("json-state-").FullName;
    private string StateDirectory => Path.Combine(_root, "state");
    private string StatePath => Path.Combine(StateDirectory, "state.bin");

    public ChecksummedJsonStateTests() => Directory.CreateDirectory(StateDirectory);

    public void Dispose()
    {
        if (File.Exists(StateDirectory)) File.Delete(StateDirectory);
        Directory.Delete(_root, recursive: true);
    }

    private static void Bump(Document d, string key)
    {
        d.Generations[key] = d.Generations.GetValueOrDefault(key) + 1;
        d.Changes++;
    }

    [Fact]
    public void A_failed_write_leaves_the_document_as_it_was_and_the_next_change_works_once_the_disk_does()
    {
        var store = new Store(StatePath);
        store.Update(d => Bump(d, "t1"));

        // The directory is replaced by a file: the write fails (for root too).
        var away = StateDirectory + ".away";
        Directory.Move(StateDirectory, away);
        File.WriteAllText(StateDirectory, "not a directory");
        Assert.ThrowsAny<IOException>(() => store.Update(d => Bump(d, "t1")));
        Assert.Equal(1UL, store.Read(d => d.Generations["t1"])); // generation 2 was never durable: nobody may see it
        Assert.Equal(1, store.Read(d => d.Changes));

        File.Delete(StateDirectory);
        Directory.Move(away, StateDirectory);
        Assert.Equal(2UL, store.Update(d => { Bump(d, "t1"); return d.Generations["t1"]; }));
        Assert.Equal(2UL, store.Read(d => d.Generations["t1"]));
        var reopened = new Store(StatePath);
        Assert.Equal(2UL, reopened.Read(d => d.Generations["t1"]));
        Assert.Equal(2, reopened.Read(d => d.Changes));
    }

    [Fact]
    public void A_change_that_throws_halfway_changes_nothing()
    {
        var store = new Store(StatePath);
        store.Update(d => Bump(d, "t1"));

        Assert.Throws<InvalidOperationException>(() => store.Update(d =>
        {
            Bump(d, "t2");
            throw new InvalidOperationException("refused after a partial change");
        }));

        Assert.False(store.Read(d => d.Generations.ContainsKey("t2")));
        Assert.Equal(1, store.Read(d => d.Changes));
        Assert.False(new Store(StatePath).Read(d => d.Generations.ContainsKey("t2")));
    }

    [Fact]
    public void What_a_reader_got_is_not_changed_under_it_by_a_later_update()
    {
        var store = new Store(StatePath);
        store.Update(d => Bump(d, "t1"));
        var seen = store.Read(d => d.Generations);

        store.Update(d => Bump(d, "t1"));

        Assert.Equal(1UL, seen["t1"]);
        Assert.Equal(2UL, store.Read(d => d.Generations["t1"]));
    }
}
