namespace Storage.Core.Wal;

/// <summary>WAL that is not valid PostgreSQL 15 WAL. <see cref="Lsn"/> says where.</summary>
public sealed class WalDecodeException : Exception
{
    public Lsn Lsn { get; }

    public WalDecodeException(Lsn lsn, string message) : base(message) => Lsn = lsn;
}
