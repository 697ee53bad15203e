import LearnStoreEngine
import LearnStoreModel
import Testing
@testable import LearnStorePersistence

/// A WAL body that passed its checksum can still hold values no server wrote (a crafted or damaged
/// file): they are refused as damage, never trapped on or reserved for.
@Suite struct WALInputRangeTests {
    static func decode(_ entry: LogEntry) throws -> WALRecord {
        let bytes = WALRecord(lsn: 1, entry: entry).encoded
        return try bytes[WALRecord.headerSize...].withUnsafeBytes { try WALRecord.decodeBody($0) }
    }

    @Test(arguments: [Int64.min, .max, Timestamp.maximum.milliseconds + 1])
    func aTimeOutsideTheRangeIsDamage(milliseconds: Int64) {
        #expect(throws: DecodeError.self) {
            _ = try Self.decode(LogEntry(tenantID: "t", sequence: 1, timestamp: Timestamp(milliseconds: milliseconds), mutations: []))
        }
        var record = sampleRecord(1)
        record.deletedAt = Timestamp(milliseconds: milliseconds)
        #expect(throws: DecodeError.self) {
            _ = try Self.decode(LogEntry(tenantID: "t", sequence: 1, timestamp: Timestamp(milliseconds: 0), mutations: [.putRecords([record])]))
        }
    }

    @Test func aMutationCountBeyondTheBodyIsRefusedBeforeReserving() {
        var writer = ByteWriter()
        writer.writeU8(MutationCodec.purgeRecordsTag)
        writer.writeVarint(1 << 24)
        writer.writeRecordID(RecordID(high: 1, low: 1))
        let error = #expect(throws: DecodeError.self) {
            _ = try writer.bytes.withByteReader { (r) throws(DecodeError) in try MutationCodec.decode(from: &r) }
        }
        #expect(error?.offset == 1)
    }

    @Test func aSequenceOrLSNNoHistoryReachesIsDamage() {
        #expect(throws: DecodeError.self) {
            _ = try Self.decode(LogEntry(tenantID: "t", sequence: .max, timestamp: Timestamp(milliseconds: 0), mutations: []))
        }
        let bytes = WALRecord(lsn: UInt64(Int64.max) + 1, entry: LogEntry(tenantID: "t", sequence: 1, timestamp: Timestamp(milliseconds: 0), mutations: [])).encoded
        #expect(throws: DecodeError.self) { _ = try bytes[WALRecord.headerSize...].withUnsafeBytes { try WALRecord.decodeBody($0) } }
    }
}

@Suite struct SnapshotIntervalTests {
    @Test(arguments: [Double.nan, .infinity, 1e300, 9.3e15])
    func anAbsurdIntervalMeansAlmostNever(seconds: Double) {
        #expect(PersistenceController.interval(seconds: seconds) == .seconds(1_000_000_000_000))
    }

    @Test func ordinaryIntervalsAreKept() {
        #expect(PersistenceController.interval(seconds: 3600) == .seconds(3600))
        #expect(PersistenceController.interval(seconds: 0.25) == .milliseconds(250))
        #expect(PersistenceController.interval(seconds: -5) == .zero)
    }
}
