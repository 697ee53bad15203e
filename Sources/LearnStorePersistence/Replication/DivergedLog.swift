/// A node that rejoins a cluster as a replica after it was a primary may hold records the new
/// primary's history does not: writes it made after its epoch ended elsewhere, none of them
/// acknowledged under synchronous replication. It drops exactly those before recovery reads its data.
public enum DivergedLog {
    /// Drops every WAL record after `lsn`, the snapshots that hold any of them, and the epochs begun
    /// after it (written to `historyDirectory`). Returns the history as it now is.
    public static func cut(_ directory: DataDirectory, after lsn: UInt64, history: EpochHistory, historyDirectory: String,
                           _ fs: any FileSystem) throws -> EpochHistory {
        if let point = try firstRecord(after: lsn, directory, fs) {
            try WALInspector.truncate(try WALInspector.planTruncation(directory, at: point, fileSystem: fs), fileSystem: fs)
        }
        for snapshot in try snapshots(after: lsn, directory, fs) { try fs.remove(snapshot) }
        var history = history
        history.truncate(after: lsn)
        try history.write(directory: historyDirectory, fs)
        return history
    }

    /// Whether the cut leaves every tenant recoverable. A snapshot beyond the cut may be the only one
    /// that reaches records retention has since removed from the WAL; without it those records are
    /// gone, and the node must copy its primary instead (CATCH_UP).
    public static func canCut(_ directory: DataDirectory, after lsn: UInt64, _ fs: any FileSystem) throws -> Bool {
        let dropped = Set(try snapshots(after: lsn, directory, fs))
        guard !dropped.isEmpty else { return true }
        let removed = try RemovedSegmentsFile.read(walDirectory: directory.walDirectory, fs)
        for (tenant, headers) in try PersistenceController.keptSnapshots(directory, fs) {
            guard let needed = removed[tenant] else { continue }
            let left = headers.filter { !dropped.contains(directory.snapshotPath(tenant, sequence: $0.sequence)) }
            if (left.map(\.lsn).max() ?? 0) < needed { return false }
        }
        return true
    }

    /// The last LSN the log in `directory` holds, read before recovery: its newest record, or the LSN
    /// before its newest segment when that holds none yet.
    public static func lastLSN(_ directory: DataDirectory, _ fs: any FileSystem) throws -> UInt64 {
        let report = try WALInspector.check(directory, fileSystem: fs)
        return max(report.lastLSN ?? 0, (report.segments.last?.firstLSN ?? 1) - 1)
    }

    /// Where the first record after `lsn` starts (the next LSN may be a gap a failed write left).
    private static func firstRecord(after lsn: UInt64, _ directory: DataDirectory, _ fs: any FileSystem) throws -> WALCutPoint? {
        guard lsn < UInt64.max, !(try directory.segments(fs)).isEmpty else { return nil }
        var found: WALCutPoint?
        try WALInspector.forEachRecord(directory, lsns: (lsn + 1)...UInt64.max, fileSystem: fs) { _, path, at in
            found = .offset(segmentFirstLSN: WALSegmentHeader.firstLSN(fromFileName: String(path.split(separator: "/").last ?? "")) ?? 0, offset: at)
            return false
        }
        return found
    }

    /// Snapshots holding a write after `lsn`.
    private static func snapshots(after lsn: UInt64, _ directory: DataDirectory, _ fs: any FileSystem) throws -> [String] {
        try SnapshotCatalog.list(directory, fileSystem: fs).compactMap { listing in
            guard let header = listing.header, header.lsn > lsn else { return nil }
            return listing.path
        }
    }
}
