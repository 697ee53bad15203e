import LearnStoreEngine
import LearnStoreModel

/// What `learnstore wal check` found in one segment.
public struct WALSegmentCheck: Sendable {
    public enum Problem: Sendable, Equatable {
        /// The 64-byte header is unreadable: nothing in the segment can be trusted.
        case badHeader(reason: String)
        /// The last write was interrupted; the server truncates it at start.
        case tornTail(offset: Int, reason: String)
        /// Damage followed by completed writes (or by later segments holding records).
        case corruption(offset: Int, reason: String)
    }

    public var path: String
    public var firstLSN: UInt64
    public var fileBytes: Int
    /// Valid records (with `--force-recovery` semantics: readable records after a damaged region count).
    public var records: Int
    public var lastLSN: UInt64?
    /// Offset after the last non-zero byte.
    public var dataEnd: Int
    public var problem: Problem?
}

/// The result of checking every WAL segment.
public struct WALCheckReport: Sendable {
    public var segments: [WALSegmentCheck] = []
    public var records: Int { segments.reduce(0) { $0 + $1.records } }
    public var firstLSN: UInt64? { segments.lazy.compactMap(\.lastLSN).isEmpty ? nil : segments.first?.firstLSN }
    public var lastLSN: UInt64? { segments.compactMap(\.lastLSN).last }
    /// A start would fail without `--force-recovery`.
    public var isCorrupt: Bool {
        segments.contains { segment in
            switch segment.problem {
            case .badHeader, .corruption: true
            case .tornTail, nil: false
            }
        }
    }
}

/// Where to cut the WAL: at the record with this LSN, or at a byte offset of a segment.
public enum WALCutPoint: Sendable, Equatable {
    case lsn(UInt64)
    case offset(segmentFirstLSN: UInt64, offset: Int)
}

/// What `learnstore wal truncate` will do: zero one segment from `offset` to its data end and
/// remove every later segment. Records at or after the cut are lost.
public struct WALTruncationPlan: Sendable {
    public var walDirectory: String
    public var segmentPath: String
    public var offset: Int
    /// Bytes zeroed in `segmentPath` (from `offset` to the end of its written data).
    public var zeroedBytes: Int
    public var removedSegments: [String]
    public var droppedRecords: Int
    public var firstDroppedLSN: UInt64?
    public var lastDroppedLSN: UInt64?
    /// Dropped records by tenant.
    public var droppedByTenant: [String: Int]
    /// Snapshots that include writes at or after the cut: they keep those writes (the WAL no longer
    /// has them), and their LSNs lie above the WAL's new end.
    public var snapshotsBeyondCut: [String]
}

/// The WAL for the operator tools: every record in order, a full check, and truncation. All reads
/// go through ``WALSegmentScanner``, the scanner recovery uses, so the tools see what a start sees.
public enum WALInspector {
    /// Checks every segment: header, every record's length, checksum and LSN order, commit markers,
    /// and whether damage is a torn tail (harmless: the server truncates it) or corruption.
    public static func check(_ directory: DataDirectory, fileSystem fs: any FileSystem = PosixFileSystem(),
                             progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> WALCheckReport {
        let segments = try directory.segments(fs)
        var report = WALCheckReport()
        var previousLSN: UInt64 = 0
        for (index, first) in segments.enumerated() {
            progress(index, segments.count)
            let path = directory.segmentPath(first)
            let bytes = try fs.readWholeFile(path)
            var check = WALSegmentCheck(path: path, firstLSN: first, fileBytes: bytes.count, records: 0, lastLSN: nil, dataEnd: 0)
            do {
                let scan = try bytes.withUnsafeBytes { raw in
                    try WALSegmentScanner.scan(raw, previousLSN: previousLSN, skipCorruption: true) { _, _ in }
                }
                check.records = scan.records
                check.lastLSN = scan.lastLSN
                check.dataEnd = scan.dataEnd
                switch scan.stop {
                case .end: break
                case .tornTail(let offset, let reason): check.problem = .tornTail(offset: offset, reason: reason)
                case .corruption(let offset, let reason, _): check.problem = .corruption(offset: offset, reason: reason)
                }
                if let last = scan.lastLSN { previousLSN = last }
            } catch let error as DecodeError {
                check.problem = .badHeader(reason: error.reason)
            }
            report.segments.append(check)
        }
        progress(segments.count, segments.count)
        // A torn tail is only a tail when no later segment holds records (recovery's rule).
        for index in report.segments.indices {
            guard case .tornTail(let offset, let reason) = report.segments[index].problem else { continue }
            if report.segments[(index + 1)...].contains(where: { $0.dataEnd > WALSegmentHeader.size }) {
                report.segments[index].problem = .corruption(offset: offset, reason: reason + "; later segments hold records")
            }
        }
        return report
    }

    /// Visits every readable record with LSN in `lsns`, in LSN order, with its segment and offset;
    /// `visit` returns false to stop. Damage is skipped (as `--force-recovery` would) and returned as
    /// messages, so a damaged WAL can still be read around its damage.
    @discardableResult
    public static func forEachRecord(
        _ directory: DataDirectory, lsns: ClosedRange<UInt64> = 0...UInt64.max, fileSystem fs: any FileSystem = PosixFileSystem(),
        visit: (WALRecord, _ segmentPath: String, _ offset: Int) throws -> Bool
    ) throws -> [String] {
        let segments = try directory.segments(fs)
        var damage: [String] = []
        var previousLSN: UInt64 = 0
        for (index, first) in segments.enumerated() {
            if first > lsns.upperBound { break }
            // A segment holds LSNs below the next one's first; skip those entirely below the range.
            if index + 1 < segments.count, segments[index + 1] <= lsns.lowerBound {
                previousLSN = segments[index + 1] - 1
                continue
            }
            let path = directory.segmentPath(first)
            let bytes = try fs.readWholeFile(path)
            struct Stop: Error {}
            let scan: WALSegmentScanner.Result
            do {
                scan = try bytes.withUnsafeBytes { raw in
                    try WALSegmentScanner.scan(raw, previousLSN: previousLSN, skipCorruption: true) { record, offset in
                        guard lsns.contains(record.lsn) else {
                            if record.lsn > lsns.upperBound { throw Stop() }
                            return
                        }
                        if try !visit(record, path, offset) { throw Stop() }
                    }
                }
            } catch is Stop {
                break
            } catch let error as DecodeError {
                damage.append("\(path): unreadable header (\(error.reason)); segment skipped")
                continue
            }
            switch scan.stop {
            case .end: break
            case .tornTail(let offset, let reason): damage.append("\(path) at byte \(offset): torn tail (\(reason))")
            case .corruption(let offset, let reason, let resume): damage.append("\(path) at byte \(offset): \(reason) (skipped to byte \(resume))")
            }
            if let last = scan.lastLSN { previousLSN = last }
        }
        return damage
    }

    /// Works out a truncation without changing anything.
    public static func planTruncation(_ directory: DataDirectory, at cut: WALCutPoint, fileSystem fs: any FileSystem = PosixFileSystem()) throws -> WALTruncationPlan {
        let segments = try directory.segments(fs)
        guard !segments.isEmpty else { throw LearnStoreError(.notFound, "\(directory.walDirectory) holds no WAL segments") }
        let segmentFirst: UInt64
        var offset: Int
        switch cut {
        case .offset(let first, let at):
            guard segments.contains(first) else { throw LearnStoreError(.notFound, "no WAL segment \(WALSegmentHeader.fileName(firstLSN: first))") }
            guard at >= WALSegmentHeader.size else { throw LearnStoreError.validation("the offset must be at least \(WALSegmentHeader.size) (after the segment header)", field: "offset") }
            segmentFirst = first
            offset = at
        case .lsn(let lsn):
            var found: (UInt64, Int)?
            try forEachRecord(directory, lsns: lsn...lsn, fileSystem: fs) { record, path, at in
                found = (WALSegmentHeader.firstLSN(fromFileName: String(path.split(separator: "/").last ?? "")) ?? 0, at)
                return false
            }
            guard let found else { throw LearnStoreError(.notFound, "the WAL holds no record with LSN \(lsn)") }
            (segmentFirst, offset) = found
        }
        let path = directory.segmentPath(segmentFirst)
        let bytes = try fs.readWholeFile(path)
        guard offset <= bytes.count else { throw LearnStoreError.validation("offset \(offset) is beyond the segment's \(bytes.count) bytes", field: "offset") }
        var plan = WALTruncationPlan(walDirectory: directory.walDirectory, segmentPath: path, offset: offset, zeroedBytes: 0, removedSegments: [], droppedRecords: 0,
                                     firstDroppedLSN: nil, lastDroppedLSN: nil, droppedByTenant: [:], snapshotsBeyondCut: [])
        func drop(_ record: WALRecord) {
            plan.droppedRecords += 1
            if plan.firstDroppedLSN == nil { plan.firstDroppedLSN = record.lsn }
            plan.lastDroppedLSN = record.lsn
            plan.droppedByTenant[record.entry.tenantID, default: 0] += 1
        }
        let scan = try bytes.withUnsafeBytes { raw in
            try WALSegmentScanner.scan(raw, previousLSN: 0, skipCorruption: true) { record, at in
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                if at + WALRecord.headerSize + length > offset { drop(record) }
            }
        }
        plan.zeroedBytes = max(0, scan.dataEnd - offset)
        for later in segments where later > segmentFirst {
            let laterPath = directory.segmentPath(later)
            plan.removedSegments.append(laterPath)
            let laterBytes = try fs.readWholeFile(laterPath)
            _ = try? laterBytes.withUnsafeBytes { raw in
                try WALSegmentScanner.scan(raw, previousLSN: 0, skipCorruption: true) { record, _ in drop(record) }
            }
        }
        if let firstDropped = plan.firstDroppedLSN {
            for listing in try SnapshotCatalog.list(directory, fileSystem: fs) {
                if let header = listing.header, header.lsn >= firstDropped { plan.snapshotsBeyondCut.append(listing.path) }
            }
        }
        return plan
    }

    /// Carries out a plan: zeroes the segment's tail (synced), then removes the later segments newest
    /// first and syncs the directory. Run it only on a stopped server's data directory (hold its LOCK).
    public static func truncate(_ plan: WALTruncationPlan, fileSystem fs: any FileSystem = PosixFileSystem()) throws {
        if plan.zeroedBytes > 0 {
            // A cut inside a group-commit write leaves its first records without their commit marker,
            // and recovery replays only records a marker closes: close them with one.
            let kept = Array(try fs.readWholeFile(plan.segmentPath).prefix(plan.offset))
            var lastKept: UInt64?
            var keptSinceMarker: UInt32 = 0
            let scan = try kept.withUnsafeBytes { raw in
                try WALSegmentScanner.scan(raw, previousLSN: 0) { record, _ in
                    lastKept = record.lsn
                    keptSinceMarker += 1
                }
            }
            let file = try fs.openForWriting(plan.segmentPath, create: false)
            defer { file.close() }
            var written = 0
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            while written < plan.zeroedBytes {
                let count = min(chunk.count, plan.zeroedBytes - written)
                try file.write(count == chunk.count ? chunk : Array(chunk[0..<count]), at: plan.offset + written)
                written += count
            }
            if let lastKept, lastKept != scan.lastLSN, plan.zeroedBytes >= WALCommitMarker.size {
                try file.write(WALCommitMarker(lastLSN: lastKept, records: keptSinceMarker).encoded, at: plan.offset)
            }
            try file.sync(dataOnly: true)
        }
        for path in plan.removedSegments.reversed() { try fs.remove(path) }
        if !plan.removedSegments.isEmpty { try fs.syncDirectory(plan.walDirectory) }
    }
}
