import LearnStoreModel

/// Reads the records of one WAL segment from its bytes: pure, no I/O.
///
/// A segment is preallocated with zeros, so the written data ends where a zero length field starts a
/// run of zeros. Each group-commit write ends with a ``WALCommitMarker``. A record that fails its
/// length, checksum, decoding or LSN-order check is either a **torn tail** (a crash interrupted the
/// last write: no later write completed, i.e. no valid commit marker follows) or **corruption** (a
/// later write's commit marker follows it, so damaged data sits before completed writes).
public struct WALSegmentScanner {
    public enum Stop: Sendable, Equatable {
        /// Clean end of the written data (zeros or end of file) at this offset.
        case end(offset: Int)
        /// A partial or damaged last write starting at `offset`; everything from there is to be discarded.
        case tornTail(offset: Int, reason: String)
        /// Damage at `offset` followed by valid records (the first of them at `resumeAt`).
        case corruption(offset: Int, reason: String, resumeAt: Int)
    }

    public struct Result: Sendable {
        public var header: WALSegmentHeader
        public var stop: Stop
        /// Offset just after the last valid record before `stop`.
        public var validEnd: Int
        public var lastLSN: UInt64?
        public var records: Int
        /// Offset of the end of the last commit marker (records after it belong to an unfinished write).
        public var lastMarkerEnd: Int
        /// Offset after the last non-zero byte (where written data ends, damaged or not).
        public var dataEnd: Int
    }

    /// Scans `bytes`, calling `visit` with each valid record and its offset, in order. `previousLSN` is
    /// the last LSN of the previous segment (records must have larger LSNs). With `skipCorruption`,
    /// scanning continues after a corrupt region at the next valid record (force recovery); the
    /// result's `stop` still reports the first damage found.
    public static func scan(
        _ bytes: UnsafeRawBufferPointer, previousLSN: UInt64, skipCorruption: Bool = false,
        wants: ((_ tenant: String, _ sequence: UInt64, _ lsn: UInt64) -> Bool)? = nil,
        collect: ((_ tenant: String, _ sequence: UInt64, _ lsn: UInt64, _ body: Range<Int>) -> Void)? = nil,
        visit: (WALRecord, Int) throws -> Void
    ) throws -> Result {
        let header = try WALSegmentHeader.decode(bytes)
        var offset = WALSegmentHeader.size
        var lastLSN: UInt64? = nil
        var floor = max(previousLSN, header.firstLSN == 0 ? 0 : header.firstLSN - 1)
        var count = 0
        var firstDamage: Stop?
        var lastMarkerEnd = WALSegmentHeader.size
        /// The LSN the last commit marker closed, and the records counted up to it.
        var committedLSN: UInt64? = nil
        var committedCount = 0
        let dataEnd = lastNonZero(bytes, from: WALSegmentHeader.size)
        func result(_ stop: Stop, _ end: Int) -> Result {
            var stop = stop
            var end = end
            // Records after the last commit marker belong to a write that never finished (a crash, or
            // a failed write whose bytes were not yet wiped): the writer never acknowledged them.
            if lastLSN != committedLSN, firstDamage == nil {
                switch stop {
                case .end, .tornTail:
                    stop = .tornTail(offset: lastMarkerEnd, reason: "records after the last commit marker (an unfinished write)")
                    end = lastMarkerEnd
                    lastLSN = committedLSN
                    count = committedCount
                case .corruption:
                    break
                }
            }
            return Result(header: header, stop: firstDamage ?? stop, validEnd: end, lastLSN: lastLSN, records: count,
                          lastMarkerEnd: lastMarkerEnd, dataEnd: max(dataEnd, end))
        }
        while true {
            switch examine(bytes, at: offset, after: floor, wants: wants, collect: collect) {
            case .end:
                return result(.end(offset: offset), offset)
            case .record(let record, let length):
                try visit(record, offset)
                lastLSN = record.lsn
                floor = record.lsn
                count += 1
                offset += length
            case .skipped(let lsn, let length):
                lastLSN = lsn
                floor = lsn
                count += 1
                offset += length
            case .marker(let length):
                offset += length
                lastMarkerEnd = offset
                committedLSN = lastLSN
                committedCount = count
            case .cutShort(let reason):
                // A preallocated segment never ends inside a record: the file lost its end.
                let stop = Stop.corruption(offset: offset, reason: reason, resumeAt: bytes.count)
                guard skipCorruption else { return result(stop, offset) }
                if firstDamage == nil { firstDamage = stop }
                offset = bytes.count
            case .damaged(let reason):
                if let resume = findCompletedWrite(bytes, from: offset + 1, after: floor) {
                    let stop = Stop.corruption(offset: offset, reason: reason, resumeAt: resume)
                    guard skipCorruption else { return result(stop, offset) }
                    if firstDamage == nil { firstDamage = stop }
                    offset = resume
                } else {
                    return result(.tornTail(offset: offset, reason: reason), offset)
                }
            }
        }
    }

    enum Examination {
        case end
        case record(WALRecord, length: Int)
        /// Verified (length, checksum, LSN order) but not decoded: the caller does not want it.
        case skipped(lsn: UInt64, length: Int)
        case marker(length: Int)
        case damaged(String)
        /// The file ends inside a record.
        case cutShort(String)
    }

    static func examine(_ bytes: UnsafeRawBufferPointer, at offset: Int, after floor: UInt64,
                        wants: ((String, UInt64, UInt64) -> Bool)? = nil,
                        wantsTenantBytes: ((UnsafeRawBufferPointer, UInt64) -> Bool)? = nil,
                        collect: ((String, UInt64, UInt64, Range<Int>) -> Void)? = nil) -> Examination {
        let remaining = bytes.count - offset
        if remaining < WALRecord.headerSize {
            return isZero(bytes, from: offset) ? .end : .cutShort("the segment file ends inside a record (\(remaining) stray bytes); it was cut short")
        }
        let rawLength = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        if rawLength == 0 {
            return isZero(bytes, from: offset) ? .end : .damaged("zero length followed by data")
        }
        if rawLength == WALCommitMarker.flag | UInt32(WALCommitMarker.bodyBytes) {
            guard remaining >= WALCommitMarker.size else { return .cutShort("the segment file ends inside a commit marker; it was cut short") }
            let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + WALCommitMarker.size)])
            guard stored == CRC32C.checksum(body) else { return .damaged("commit marker checksum mismatch") }
            let last = UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            guard last == floor else { return .damaged("commit marker for LSN \(last) after LSN \(floor)") }
            return .marker(length: WALCommitMarker.size)
        }
        let length = Int(rawLength)
        guard length >= WALRecord.fixedBodyPrefix + 2, length <= WALRecord.maximumBodyBytes else {
            return .damaged("implausible record length \(length)")
        }
        guard length <= remaining - WALRecord.headerSize else {
            return .cutShort("a record of \(length) bytes at byte \(offset) runs past the end of the file (\(bytes.count) bytes); the segment was cut short")
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + WALRecord.headerSize)..<(offset + WALRecord.headerSize + length)])
        let actual = CRC32C.checksum(body)
        guard stored == actual else { return .damaged("checksum mismatch (stored \(hex(stored)), computed \(hex(actual)))") }
        if let wantsTenantBytes {
            // A follower of one tenant passes over every other tenant's records: comparing the tenant's
            // bytes is enough to pass one over, and no string is built for it. A wanted record is decoded
            // whole below, which validates its tenant too.
            var reader = ByteReader(body)
            if let lsn = try? reader.readCounter(), let sequence = try? reader.readCounter(), (try? reader.readTimestamp()) != nil,
                let tenantLength = try? reader.readLength(limit: 256), let tenant = try? reader.readBytes(tenantLength),
                !wantsTenantBytes(tenant, sequence)
            {
                guard lsn > floor else { return .damaged("LSN \(lsn) does not follow \(floor)") }
                return .skipped(lsn: lsn, length: WALRecord.headerSize + length)
            }
        } else if wants != nil || collect != nil {
            // Records a snapshot already covers need no decoding (the checksum vouches for them), and a
            // collecting caller decodes the ones it wants itself (in parallel, per tenant).
            var reader = ByteReader(body)
            // Read with the checks decodeBody applies, so a value it would refuse falls through to it
            // and is reported as damage instead of becoming the next LSN to count on from.
            if let lsn = try? reader.readCounter(), let sequence = try? reader.readCounter(), (try? reader.readTimestamp()) != nil,
                let tenant = try? reader.readString(limit: 256)
            {
                let wanted = wants?(tenant, sequence, lsn) ?? true
                if !wanted || collect != nil {
                    guard lsn > floor else { return .damaged("LSN \(lsn) does not follow \(floor)") }
                    if wanted { collect?(tenant, sequence, lsn, (offset + WALRecord.headerSize)..<(offset + WALRecord.headerSize + length)) }
                    return .skipped(lsn: lsn, length: WALRecord.headerSize + length)
                }
            }
        }
        let record: WALRecord
        do { record = try WALRecord.decodeBody(body) } catch { return .damaged("undecodable record: \(error)") }
        guard record.lsn > floor else { return .damaged("LSN \(record.lsn) does not follow \(floor)") }
        return .record(record, length: WALRecord.headerSize + length)
    }

    /// The next offset after `start` where a later write completed: a valid commit marker for an LSN
    /// above `floor`. Returns the offset of the first valid record of that write's region, to resume at.
    static func findCompletedWrite(_ bytes: UnsafeRawBufferPointer, from start: Int, after floor: UInt64) -> Int? {
        let markerWord = WALCommitMarker.flag | UInt32(WALCommitMarker.bodyBytes)
        var offset = start
        var firstRecordCandidate: Int?
        while offset + WALCommitMarker.size <= bytes.count {
            let word = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            if word == markerWord {
                let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + WALCommitMarker.size)])
                let last = UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
                if stored == CRC32C.checksum(body), last > floor {
                    return firstRecordCandidate ?? offset
                }
            } else if firstRecordCandidate == nil, word >= UInt32(WALRecord.fixedBodyPrefix + 2),
                Int(word) <= bytes.count - offset - WALRecord.headerSize
            {
                let lsn = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + WALRecord.headerSize, as: UInt64.self))
                if lsn > floor, lsn - floor < 1 << 40, case .record = examine(bytes, at: offset, after: floor) {
                    firstRecordCandidate = offset
                }
            }
            offset += 1
        }
        return nil
    }

    /// Offset just after the last non-zero byte at or after `start`.
    static func lastNonZero(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = bytes.count
        while index >= start + 8, bytes.loadUnaligned(fromByteOffset: index - 8, as: UInt64.self) == 0 { index -= 8 }
        while index > start, bytes[index - 1] == 0 { index -= 1 }
        return max(index, start)
    }

    static func isZero(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> Bool {
        var index = offset
        // Word at a time where possible.
        while index + 8 <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { return false }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] != 0 { return false }
            index += 1
        }
        return true
    }

    static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}
