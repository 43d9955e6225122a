using Storage.Proto.Safekeeper;

namespace Storage.Core.Consensus;

/// <summary>One switch of a term history: <paramref name="Term"/> began writing WAL at <paramref name="Lsn"/>.</summary>
public readonly record struct TermSwitch(ulong Term, Lsn Lsn);

/// <summary>
/// Which term wrote which range of WAL: a list of switches with increasing terms and
/// non-decreasing LSNs. Entry i covers [entry[i].Lsn, entry[i+1].Lsn); the last entry covers
/// everything from its LSN up to the holder's flush LSN. Two acceptors with the same history up to
/// some LSN hold byte-identical WAL there (one proposer per term, and it writes one stream).
/// </summary>
public sealed class TermHistory
{
    public static readonly TermHistory Empty = new(Array.Empty<TermSwitch>());

    public IReadOnlyList<TermSwitch> Entries { get; }

    public TermHistory(IReadOnlyList<TermSwitch> entries)
    {
        for (int i = 1; i < entries.Count; i++)
        {
            if (entries[i].Term <= entries[i - 1].Term)
                throw new ArgumentException($"term history is not increasing in term at entry {i}: {entries[i - 1].Term} then {entries[i].Term}");
            if (entries[i].Lsn < entries[i - 1].Lsn)
                throw new ArgumentException($"term history goes back in LSN at entry {i}: {entries[i - 1].Lsn} then {entries[i].Lsn}");
        }
        Entries = entries;
    }

    public int Count => Entries.Count;

    /// <summary>The history as it was when WAL ended at <paramref name="lsn"/>: switches after it are dropped.</summary>
    public TermHistory UpTo(Lsn lsn)
    {
        int n = 0;
        while (n < Entries.Count && Entries[n].Lsn <= lsn) n++;
        return n == Entries.Count ? this : new TermHistory(Entries.Take(n).ToArray());
    }

    /// <summary>The term of the last WAL up to <paramref name="flushLsn"/> (0 when there is none).</summary>
    public ulong LastLogTerm(Lsn flushLsn)
    {
        var upTo = UpTo(flushLsn);
        return upTo.Count == 0 ? 0 : upTo.Entries[^1].Term;
    }

    public ulong LastTerm => Entries.Count == 0 ? 0 : Entries[^1].Term;

    public TermHistory Append(ulong term, Lsn lsn) => new(Entries.Append(new TermSwitch(term, lsn)).ToArray());

    /// <summary>
    /// The highest LSN up to which an acceptor holding <paramref name="acceptor"/> with WAL up to
    /// <paramref name="acceptorFlush"/> agrees with <paramref name="proposer"/>'s history: the point
    /// where the acceptor must truncate before taking the proposer's WAL. With no common term the
    /// acceptor has no usable WAL and the point is the timeline start.
    /// </summary>
    public static Lsn HighestCommonPoint(TermHistory proposer, TermHistory acceptor, Lsn acceptorFlush, Lsn timelineStart)
    {
        var acc = acceptor.UpTo(acceptorFlush);
        int common = 0;
        while (common < acc.Count && common < proposer.Count && acc.Entries[common] == proposer.Entries[common])
            common++;
        if (common == 0) return timelineStart;

        int last = common - 1;
        // Both agree on term entries[last] starting at the same LSN; it ends where either side's
        // next switch begins (or at the acceptor's flush LSN when it has none).
        Lsn proposerEnd = last + 1 < proposer.Count ? proposer.Entries[last + 1].Lsn : Lsn.Max;
        Lsn acceptorEnd = last + 1 < acc.Count ? acc.Entries[last + 1].Lsn : acceptorFlush;
        return Lsn.Min(proposerEnd, acceptorEnd);
    }

    public IEnumerable<TermEntry> ToProto() => Entries.Select(e => new TermEntry { Term = e.Term, Lsn = e.Lsn.Value });

    public static TermHistory FromProto(IEnumerable<TermEntry> entries) =>
        new(entries.Select(e => new TermSwitch(e.Term, new Lsn(e.Lsn))).ToArray());

    public override string ToString() => "[" + string.Join(", ", Entries.Select(e => $"{e.Term}@{e.Lsn}")) + "]";
}
