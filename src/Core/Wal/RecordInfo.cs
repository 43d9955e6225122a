namespace Storage.Core.Wal;

/// <summary>Info codes of the XLOG resource manager (pg_control.h).</summary>
public static class XlogInfo
{
    public const byte CheckpointShutdown = 0x00;
    public const byte CheckpointOnline = 0x10;
    public const byte Noop = 0x20;
    public const byte NextOid = 0x30;
    public const byte Switch = 0x40;
    public const byte BackupEnd = 0x50;
    public const byte ParameterChange = 0x60;
    public const byte RestorePoint = 0x70;
    public const byte FpwChange = 0x80;
    public const byte EndOfRecovery = 0x90;
    public const byte FpiForHint = 0xA0;
    public const byte Fpi = 0xB0;
    public const byte OverwriteContrecord = 0xD0;
}

/// <summary>Info codes of the Transaction resource manager (xact.h); use with <see cref="OpMask"/>.</summary>
public static class XactInfo
{
    public const byte OpMask = 0x70;
    public const byte HasInfo = 0x80;
    public const byte Commit = 0x00;
    public const byte Prepare = 0x10;
    public const byte Abort = 0x20;
    public const byte CommitPrepared = 0x30;
    public const byte AbortPrepared = 0x40;
    public const byte AssignmentOp = 0x50;
    public const byte Invalidations = 0x60;
}

/// <summary>Short names for record kinds, as pg_waldump's rm_identify prints them.</summary>
public static class RecordInfoNames
{
    /// <summary>The operation name, or "UNKNOWN (xx)" style text for kinds we do not name.</summary>
    public static string Identify(WalRecord record)
    {
        byte info = record.RmgrInfo;
        return (ResourceManagerId)record.RmgrId switch
        {
            ResourceManagerId.Xlog => info switch
            {
                XlogInfo.CheckpointShutdown => "CHECKPOINT_SHUTDOWN",
                XlogInfo.CheckpointOnline => "CHECKPOINT_ONLINE",
                XlogInfo.Noop => "NOOP",
                XlogInfo.NextOid => "NEXTOID",
                XlogInfo.Switch => "SWITCH",
                XlogInfo.BackupEnd => "BACKUP_END",
                XlogInfo.ParameterChange => "PARAMETER_CHANGE",
                XlogInfo.RestorePoint => "RESTORE_POINT",
                XlogInfo.FpwChange => "FPW_CHANGE",
                XlogInfo.EndOfRecovery => "END_OF_RECOVERY",
                XlogInfo.FpiForHint => "FPI_FOR_HINT",
                XlogInfo.Fpi => "FPI",
                XlogInfo.OverwriteContrecord => "OVERWRITE_CONTRECORD",
                _ => Unknown(info),
            },
            ResourceManagerId.Transaction => (info & XactInfo.OpMask) switch
            {
                XactInfo.Commit => "COMMIT",
                XactInfo.Prepare => "PREPARE",
                XactInfo.Abort => "ABORT",
                XactInfo.CommitPrepared => "COMMIT_PREPARED",
                XactInfo.AbortPrepared => "ABORT_PREPARED",
                XactInfo.AssignmentOp => "ASSIGNMENT",
                XactInfo.Invalidations => "INVALIDATION",
                _ => Unknown(info),
            },
            ResourceManagerId.Heap => ((info & 0x70) switch
            {
                0x00 => "INSERT",
                0x10 => "DELETE",
                0x20 => "UPDATE",
                0x30 => "TRUNCATE",
                0x40 => "HOT_UPDATE",
                0x50 => "CONFIRM",
                0x60 => "LOCK",
                _ => "INPLACE",
            }) + ((info & 0x80) != 0 ? "+INIT" : ""),
            ResourceManagerId.Heap2 => ((info & 0x70) switch
            {
                0x00 => "REWRITE",
                0x10 => "PRUNE",
                0x20 => "VACUUM",
                0x30 => "FREEZE_PAGE",
                0x40 => "VISIBLE",
                0x50 => "MULTI_INSERT",
                0x60 => "LOCK_UPDATED",
                _ => "NEW_CID",
            }) + ((info & 0x80) != 0 ? "+INIT" : ""),
            ResourceManagerId.Standby => info switch
            {
                0x00 => "LOCK",
                0x10 => "RUNNING_XACTS",
                0x20 => "INVALIDATIONS",
                _ => Unknown(info),
            },
            _ => Unknown(info),
        };
    }

    private static string Unknown(byte info) => $"info 0x{info:X2}";
}
