import LearnStoreEngine
import LearnStoreModel

/// The records of one replication frame, checked as the log checks its own before anything uses
/// them: each record's length, checksum and body, LSNs ascending above what the replica holds, and
/// nothing but records (no commit markers, no stray bytes).
public enum ShippedRecords {
    public struct Record: Sendable {
        public var record: WALRecord
        /// Where its bytes are in the frame's records.
        public var bytes: Range<Int>
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// How many of the (already checked) records in `bytes` have an LSN at or below `lsn`.
    public static func count(_ bytes: [UInt8], through lsn: UInt64) -> Int {
        var count = 0
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset + WALRecord.headerSize + 8 <= raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let recordLSN = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + WALRecord.headerSize, as: UInt64.self))
                guard recordLSN <= lsn else { return }
                count += 1
                offset += WALRecord.headerSize + length
            }
        }
        return count
    }

    public static func parse(_ bytes: [UInt8], after floor: UInt64) throws(Invalid) -> [Record] {
        var records: [Record] = []
        var offset = 0
        var last = floor
        let failure: Invalid? = bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                switch WALSegmentScanner.examine(raw, at: offset, after: last) {
                case .record(let record, let length):
                    guard CallerIdentity.isValidTenantID(record.entry.tenantID) else {
                        return Invalid(description: "record at LSN \(record.lsn) names an invalid tenant")
                    }
                    records.append(Record(record: record, bytes: offset..<(offset + length)))
                    offset += length
                    last = record.lsn
                case .marker, .skipped, .end:
                    return Invalid(description: "byte \(offset) of the shipped records is not a record")
                case .damaged(let reason), .cutShort(let reason):
                    return Invalid(description: "shipped record at byte \(offset): \(reason)")
                }
            }
            return nil
        }
        if let failure { throw failure }
        return records
    }
}

/// What a replica does with a RECORDS frame: checks its records and applies each, in order, to the
/// tenant it belongs to, queuing it in the replica's log at its primary's LSN. Shared by the server's
/// follower and the simulation.
public enum ReplicatedApply {
    /// Returns the LSN of the last record applied (`after` when there were none), or the first error;
    /// the records before it stay applied.
    public static func apply(_ bytes: [UInt8], after: UInt64, tenant: (String) -> TenantActor) -> (applied: UInt64, error: LearnStoreError?) {
        let records: [ShippedRecords.Record]
        do { records = try ShippedRecords.parse(bytes, after: after) } catch {
            return (after, LearnStoreError(.badFrame, "RECORDS: \(error)"))
        }
        var applied = after
        for shipped in records {
            let record = shipped.record
            let sealed = Array(bytes[shipped.bytes])
            let failure: LearnStoreError? = tenant(record.entry.tenantID).withExclusiveAccess { actor in
                do throws(LearnStoreError) {
                    try actor.applyReplicated(record.entry, lsn: record.lsn, sealed: sealed)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { return (applied, LearnStoreError(failure.code, "applying LSN \(record.lsn): \(failure.message)")) }
            applied = record.lsn
        }
        return (applied, nil)
    }
}
