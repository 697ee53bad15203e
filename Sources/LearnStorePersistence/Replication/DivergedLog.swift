/// A node that rejoins a cluster as a replica after it was a primary may hold records the new
/// primary's history does not: writes it made after its epoch ended elsewhere, none of them
/// acknowledged under synchronous replication. It drops exactly those before recovery reads its data.
public enum DivergedLog {
    /// Drops every WAL record after `lsn`, the snapshots that hold any of them, and the epochs begun
    /// after it (written to `historyDirectory`). Returns the history as it now is.
    public static func cut(_ directory: DataDirectory, after lsn: UInt64, history: EpochHistory, historyDirectory: String,
                           _ fs: any FileSystem) throws -> EpochHistory {
        let plan = try WALInspector.planTruncation(directory, at: .lsn(lsn + 1), fileSystem: fs)
        try WALInspector.truncate(plan, fileSystem: fs)
        for snapshot in plan.snapshotsBeyondCut { try fs.remove(snapshot) }
        var history = history
        history.truncate(after: lsn)
        try history.write(directory: historyDirectory, fs)
        return history
    }

    /// The last LSN the log in `directory` holds, read before recovery: its newest record, or the LSN
    /// before its newest segment when that holds none yet.
    public static func lastLSN(_ directory: DataDirectory, _ fs: any FileSystem) throws -> UInt64 {
        let report = try WALInspector.check(directory, fileSystem: fs)
        return max(report.lastLSN ?? 0, (report.segments.last?.firstLSN ?? 1) - 1)
    }
}
