import LearnStoreModel

/// Payloads of the admin opcodes `0x80`–`0x82` (docs/PROTOCOL.md, appendix C; HELLO feature bit 2).
/// Every admin opcode needs the token's `admin` scope and acts on the token's own tenant.
public enum AdminMessages {
    /// Records or outcome rows in one IMPORT request (the server's batch limit × 100 by default).
    public static let maximumImportCount = 100_000
    /// One outcome row's JSON in an IMPORT request.
    public static let maximumRowBytes = 4 << 20

    // MARK: SNAPSHOT 0x80

    public static func encodeSnapshot(force: Bool, into writer: inout ByteWriter) {
        writer.writeU8(force ? 1 : 0)
    }

    public static func decodeSnapshot(from reader: inout ByteReader) throws(DecodeError) -> Bool {
        let force = try RecordMessages.readBool(&reader)
        try reader.expectEnd()
        return force
    }

    // MARK: RESTORE_TENANT 0x81

    public static func encodeRestore(_ request: RestoreTenantRequest, into writer: inout ByteWriter) {
        var options: UInt8 = request.dryRun ? 1 : 0
        if request.snapshotSequence != nil { options |= 2 }
        if request.sequence != nil { options |= 4 }
        if request.time != nil { options |= 8 }
        writer.writeU8(options)
        writer.writeU64(request.snapshotSequence ?? 0)
        writer.writeU64(request.sequence ?? 0)
        writer.writeI64(request.time?.milliseconds ?? 0)
    }

    public static func decodeRestore(from reader: inout ByteReader) throws(DecodeError) -> RestoreTenantRequest {
        let optionsOffset = reader.offset
        let options = try reader.readU8()
        guard options & 0xF0 == 0 else { throw DecodeError(offset: optionsOffset, reason: "unknown restore option bits 0x\(String(options, radix: 16))") }
        let snapshot = try reader.readU64()
        let sequence = try reader.readU64()
        let timeOffset = reader.offset
        let time = try reader.readI64()
        try reader.expectEnd()
        if options & 8 != 0, !(Timestamp.minimum.milliseconds...Timestamp.maximum.milliseconds).contains(time) { throw DecodeError(offset: timeOffset, reason: "time out of range") }
        return RestoreTenantRequest(
            dryRun: options & 1 != 0, snapshotSequence: options & 2 != 0 ? snapshot : nil, sequence: options & 4 != 0 ? sequence : nil,
            time: options & 8 != 0 ? Timestamp(milliseconds: time) : nil)
    }

    public static func encodeRestoreResponse(_ report: RestoreTenantReport, into writer: inout ByteWriter) {
        writer.writeU8(report.dryRun ? 1 : 0)
        writer.writeU8(report.snapshotSequence != nil ? 1 : 0)
        writer.writeU64(report.snapshotSequence ?? 0)
        writer.writeU64(report.snapshotLSN)
        writer.writeU64(report.walRecordsApplied)
        writer.writeU64(report.lastLSN)
        for figures in [report.before, report.restored] {
            writer.writeU64(figures.sequence)
            writer.writeU64(figures.records)
            writer.writeU64(figures.deletedRecords)
            writer.writeU64(figures.outcomeRows)
        }
        writer.writeU64(report.newSequence)
        for difference in [report.records, report.outcomeRows] {
            writer.writeU64(difference.added)
            writer.writeU64(difference.removed)
            writer.writeU64(difference.changed)
        }
    }

    public static func decodeRestoreResponse(from reader: inout ByteReader) throws(DecodeError) -> RestoreTenantReport {
        let dryRun = try RecordMessages.readBool(&reader)
        let hasSnapshot = try RecordMessages.readBool(&reader)
        let snapshot = try reader.readU64()
        var report = RestoreTenantReport(dryRun: dryRun, snapshotSequence: hasSnapshot ? snapshot : nil)
        report.snapshotLSN = try reader.readU64()
        report.walRecordsApplied = try reader.readU64()
        report.lastLSN = try reader.readU64()
        func figures() throws(DecodeError) -> RestoreTenantReport.Figures {
            RestoreTenantReport.Figures(sequence: try reader.readU64(), records: try reader.readU64(), deletedRecords: try reader.readU64(),
                                        outcomeRows: try reader.readU64())
        }
        report.before = try figures()
        report.restored = try figures()
        report.newSequence = try reader.readU64()
        func difference() throws(DecodeError) -> RestoreTenantReport.Difference {
            RestoreTenantReport.Difference(added: try reader.readU64(), removed: try reader.readU64(), changed: try reader.readU64())
        }
        report.records = try difference()
        report.outcomeRows = try difference()
        try reader.expectEnd()
        return report
    }

    // MARK: IMPORT 0x82

    public static func encodeImport(records: [LearningRecord], outcomeRows: [[UInt8]], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(records.count))
        for record in records { RecordCodec.encode(record, into: &writer) }
        writer.writeVarint(UInt64(outcomeRows.count))
        for row in outcomeRows { writer.writeLengthPrefixed(row) }
    }

    /// The records and the outcome rows (each one row's JSON, still to be parsed).
    public static func decodeImport(from reader: inout ByteReader, maximumCount: Int = maximumImportCount) throws(DecodeError) -> ([LearningRecord], [[UInt8]]) {
        let recordCount = try reader.readCount(limit: maximumCount, minimumElementBytes: RecordCodec.minimumRecordBytes)
        var records: [LearningRecord] = []
        records.reserveCapacity(recordCount)
        for _ in 0..<recordCount { records.append(try RecordCodec.decodeRecord(from: &reader)) }
        let rowCount = try reader.readLength(limit: maximumCount)
        var rows: [[UInt8]] = []
        rows.reserveCapacity(min(rowCount, 4096))
        for _ in 0..<rowCount {
            let length = try reader.readLength(limit: maximumRowBytes)
            rows.append(Array(try reader.readBytes(length)))
        }
        try reader.expectEnd()
        return (records, rows)
    }

    public static func encodeImportResponse(sequence: UInt64, records: Int, outcomesApplied: Int, outcomesUnchanged: Int, into writer: inout ByteWriter) {
        writer.writeU64(sequence)
        writer.writeVarint(UInt64(records))
        writer.writeVarint(UInt64(outcomesApplied))
        writer.writeVarint(UInt64(outcomesUnchanged))
    }

    public static func decodeImportResponse(from reader: inout ByteReader) throws(DecodeError) -> ImportReport {
        let sequence = try reader.readU64()
        let records = try reader.readVarint()
        let applied = try reader.readVarint()
        let unchanged = try reader.readVarint()
        try reader.expectEnd()
        return ImportReport(sequence: sequence, records: Int(clamping: records), outcomesApplied: Int(clamping: applied),
                            outcomesUnchanged: Int(clamping: unchanged))
    }

    // MARK: SNAPSHOT response

    public static func encodeSnapshotResponse(_ report: SnapshotReport, into writer: inout ByteWriter) {
        writer.writeU8(report.written ? 1 : 0)
        writer.writeU64(report.sequence)
        writer.writeU64(report.records)
        writer.writeU64(report.bytes)
        writer.writeString(report.file)
    }

    public static func decodeSnapshotResponse(from reader: inout ByteReader) throws(DecodeError) -> SnapshotReport {
        let written = try RecordMessages.readBool(&reader)
        let report = SnapshotReport(written: written, sequence: try reader.readU64(), records: try reader.readU64(), bytes: try reader.readU64(),
                                    file: try reader.readString(limit: 4096))
        try reader.expectEnd()
        return report
    }
}

/// RESTORE_TENANT request: the point to restore the caller's tenant to.
public struct RestoreTenantRequest: Sendable, Hashable {
    /// Only report what would change.
    public var dryRun: Bool
    /// Start from this snapshot (else the newest usable one).
    public var snapshotSequence: UInt64?
    /// Replay the WAL up to this tenant sequence (else to its end).
    public var sequence: UInt64?
    /// Replay the WAL up to this time, inclusive (else to its end).
    public var time: Timestamp?

    public init(dryRun: Bool = false, snapshotSequence: UInt64? = nil, sequence: UInt64? = nil, time: Timestamp? = nil) {
        self.dryRun = dryRun
        self.snapshotSequence = snapshotSequence
        self.sequence = sequence
        self.time = time
    }
}

/// RESTORE_TENANT response: what the restore changed (or, for a dry run, would change).
public struct RestoreTenantReport: Sendable, Hashable {
    public struct Figures: Sendable, Hashable {
        public var sequence: UInt64 = 0
        public var records: UInt64 = 0
        public var deletedRecords: UInt64 = 0
        /// Live outcome entities plus tombstones.
        public var outcomeRows: UInt64 = 0
        public init(sequence: UInt64 = 0, records: UInt64 = 0, deletedRecords: UInt64 = 0, outcomeRows: UInt64 = 0) {
            self.sequence = sequence
            self.records = records
            self.deletedRecords = deletedRecords
            self.outcomeRows = outcomeRows
        }
    }

    public struct Difference: Sendable, Hashable {
        public var added: UInt64 = 0
        public var removed: UInt64 = 0
        public var changed: UInt64 = 0
        public init(added: UInt64 = 0, removed: UInt64 = 0, changed: UInt64 = 0) {
            self.added = added
            self.removed = removed
            self.changed = changed
        }
    }

    public var dryRun: Bool
    public var snapshotSequence: UInt64?
    public var snapshotLSN: UInt64 = 0
    public var walRecordsApplied: UInt64 = 0
    /// LSN of the tenant's last write in the replaced history.
    public var lastLSN: UInt64 = 0
    public var before = Figures()
    /// The state at the restore point (its own sequence).
    public var restored = Figures()
    /// The tenant's sequence after the restore.
    public var newSequence: UInt64 = 0
    public var records = Difference()
    public var outcomeRows = Difference()

    public init(dryRun: Bool, snapshotSequence: UInt64?) {
        self.dryRun = dryRun
        self.snapshotSequence = snapshotSequence
    }
}

/// IMPORT response.
public struct ImportReport: Sendable, Hashable {
    /// The tenant's sequence after the import (unchanged when nothing was written).
    public var sequence: UInt64
    public var records: Int
    public var outcomesApplied: Int
    public var outcomesUnchanged: Int

    public init(sequence: UInt64, records: Int, outcomesApplied: Int, outcomesUnchanged: Int) {
        self.sequence = sequence
        self.records = records
        self.outcomesApplied = outcomesApplied
        self.outcomesUnchanged = outcomesUnchanged
    }
}

/// SNAPSHOT response.
public struct SnapshotReport: Sendable, Hashable {
    /// False when nothing changed since the tenant's newest snapshot (and `force` was not set).
    public var written: Bool
    public var sequence: UInt64
    public var records: UInt64
    /// The file's size (0 when not written).
    public var bytes: UInt64
    /// The file, relative to the data directory (empty when not written).
    public var file: String

    public init(written: Bool, sequence: UInt64, records: UInt64, bytes: UInt64, file: String) {
        self.written = written
        self.sequence = sequence
        self.records = records
        self.bytes = bytes
        self.file = file
    }
}
