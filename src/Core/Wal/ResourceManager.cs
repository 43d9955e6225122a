namespace Storage.Core.Wal;

/// <summary>Built-in resource manager ids of PostgreSQL 15 (rmgrlist.h).</summary>
public enum ResourceManagerId : byte
{
    Xlog = 0, Transaction = 1, Storage = 2, Clog = 3, Database = 4, Tablespace = 5, MultiXact = 6,
    RelMap = 7, Standby = 8, Heap2 = 9, Heap = 10, Btree = 11, Hash = 12, Gin = 13, Gist = 14,
    Sequence = 15, SpGist = 16, Brin = 17, CommitTs = 18, ReplicationOrigin = 19, Generic = 20,
    LogicalMessage = 21,
}

/// <summary>Resource manager names, spelled as pg_waldump prints them.</summary>
public static class ResourceManager
{
    public const byte MaxBuiltinId = 21;
    public const byte MinCustomId = 128; // PostgreSQL 15 reserves 128..255 for extensions

    private static readonly string[] Names =
    [
        "XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace", "MultiXact", "RelMap",
        "Standby", "Heap2", "Heap", "Btree", "Hash", "Gin", "Gist", "Sequence", "SPGist", "BRIN",
        "CommitTs", "ReplicationOrigin", "Generic", "LogicalMessage",
    ];

    public static bool IsValid(byte id) => id <= MaxBuiltinId || id >= MinCustomId;

    public static string Name(byte id) =>
        id <= MaxBuiltinId ? Names[id] : id >= MinCustomId ? $"custom{id:D3}" : $"invalid{id}";
}
