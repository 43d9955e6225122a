using System.Globalization;

namespace Storage.Core;

/// <summary>
/// A PostgreSQL WAL position (XLogRecPtr): a byte offset into the infinite WAL stream.
/// Prints and parses like PostgreSQL does ("0/16B3748": high and low 32 bits in upper-case hex).
/// </summary>
public readonly record struct Lsn(ulong Value) : IComparable<Lsn>
{
    public static readonly Lsn Zero = new(0);
    public static readonly Lsn Invalid = new(0);
    public static readonly Lsn Max = new(ulong.MaxValue);

    public bool IsValid => Value != 0;

    public static Lsn Parse(string text)
    {
        if (!TryParse(text, out var lsn))
            throw new FormatException($"'{text}' is not an LSN (expected the form 0/16B3748)");
        return lsn;
    }

    public static bool TryParse(string? text, out Lsn lsn)
    {
        lsn = Zero;
        if (string.IsNullOrEmpty(text)) return false;
        int slash = text.IndexOf('/');
        if (slash <= 0 || slash == text.Length - 1 || slash > 8 || text.Length - slash - 1 > 8) return false;
        if (!uint.TryParse(text.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hi)) return false;
        if (!uint.TryParse(text.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lo)) return false;
        lsn = new Lsn(((ulong)hi << 32) | lo);
        return true;
    }

    public override string ToString() => $"{Value >> 32:X}/{Value & 0xFFFFFFFF:X}";

    public int CompareTo(Lsn other) => Value.CompareTo(other.Value);

    public static bool operator <(Lsn a, Lsn b) => a.Value < b.Value;
    public static bool operator >(Lsn a, Lsn b) => a.Value > b.Value;
    public static bool operator <=(Lsn a, Lsn b) => a.Value <= b.Value;
    public static bool operator >=(Lsn a, Lsn b) => a.Value >= b.Value;
    public static Lsn operator +(Lsn a, ulong bytes) => new(checked(a.Value + bytes));
    public static Lsn operator +(Lsn a, long bytes) => new(checked((ulong)((long)a.Value + bytes)));
    public static long operator -(Lsn a, Lsn b) => checked((long)(a.Value - b.Value));

    public static Lsn Min(Lsn a, Lsn b) => a <= b ? a : b;
    public static Lsn MaxOf(Lsn a, Lsn b) => a >= b ? a : b;

    public static implicit operator ulong(Lsn lsn) => lsn.Value;
    public static explicit operator Lsn(ulong value) => new(value);
}
