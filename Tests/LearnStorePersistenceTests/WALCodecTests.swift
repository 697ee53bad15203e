import LearnStoreEngine
import LearnStoreModel
import Testing
@testable import LearnStorePersistence

@Suite struct WALCodecTests {
    @Test func recordsRoundTripWithEveryMutationKind() throws {
        let entry = LogEntry(tenantID: "t1", sequence: 42, timestamp: Timestamp(milliseconds: 123), mutations: [
            .resetTenant,
            .putRecords((0..<5).map { sampleRecord($0) }),
            .recordChange(.import),
            .purgeRecords([sampleRecord(1).id, sampleRecord(2).id]),
            .rememberIdempotencyKey(IdempotencyEntry(key: "app\u{0}k", fingerprint: 77, ids: [sampleRecord(3).id], sequence: 41)),
        ])
        let record = WALRecord(lsn: 9, entry: entry)
        let bytes = record.encoded
        let decoded = try bytes[WALRecord.headerSize...].withUnsafeBytes { try WALRecord.decodeBody($0) }
        #expect(decoded == record)
        #expect(CRC32C.checksum(bytes[WALRecord.headerSize...]) == UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24)
    }

    /// A release is a mutation of one byte, the smallest a record can hold.
    @Test func aRecordOfOnlyARelease() throws {
        let record = WALRecord(lsn: 3, entry: LogEntry(tenantID: "t1", sequence: 7, timestamp: Timestamp(milliseconds: 1), mutations: [.releaseTenant]))
        let bytes = record.encoded
        #expect(try bytes[WALRecord.headerSize...].withUnsafeBytes { try WALRecord.decodeBody($0) } == record)
    }

    @Test func crc32cKnownValue() {
        // RFC 3720 test vector: 32 bytes of zeros -> 0x8A9136AA; "123456789" -> 0xE3069283.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

@Suite struct WALScannerTests {
    static func segment() -> (bytes: [UInt8], records: [WALRecord], recordEnds: [Int], markerEnds: [Int]) {
        var lsn: UInt64 = 1
        var batches: [[WALRecord]] = []
        var all: [WALRecord] = []
        for batchIndex in 0..<4 {
            var batch: [WALRecord] = []
            for i in 0..<(batchIndex + 1) {
                let record = WALRecord(lsn: lsn, entry: entry(lsn, records: [sampleRecord(Int(lsn) * 10 + i)]))
                batch.append(record)
                all.append(record)
                lsn += 1
            }
            batches.append(batch)
        }
        let built = buildSegment(batches: batches)
        return (built.bytes, all, built.recordEnds, built.markerEnds)
    }

    func scan(_ bytes: [UInt8], force: Bool = false) throws -> (WALSegmentScanner.Result, [WALRecord]) {
        var seen: [WALRecord] = []
        let result = try bytes.withUnsafeBytes { raw in
            try WALSegmentScanner.scan(raw, previousLSN: 0, skipCorruption: force) { record, _ in seen.append(record) }
        }
        return (result, seen)
    }

    @Test func aCleanSegmentWithPreallocatedZerosEndsCleanly() throws {
        let (bytes, records, _, _) = Self.segment()
        let (result, seen) = try scan(bytes + [UInt8](repeating: 0, count: 4096))
        #expect(seen == records)
        #expect(result.stop == .end(offset: bytes.count))
    }

    /// Truncation at every byte offset recovers exactly the whole records before the cut, and is
    /// always a clean end or a torn tail, never corruption.
    @Test func truncationAtEveryOffsetRecoversExactlyTheWholeRecordsBeforeIt() throws {
        let (bytes, records, recordEnds, _) = Self.segment()
        for cut in WALSegmentHeader.size...bytes.count {
            // A crash leaves zeros (preallocation) after the last byte that reached the disk.
            let torn = Array(bytes[0..<cut]) + [UInt8](repeating: 0, count: 512)
            let (result, seen) = try scan(torn)
            // A record cut only in trailing zero bytes is restored exactly by the zero padding.
            let intact = recordEnds.filter { end in end <= cut || bytes[cut..<end].allSatisfy { $0 == 0 } }.count
            let expected = records.prefix(intact)
            #expect(seen == Array(expected), "cut at \(cut)")
            switch result.stop {
            case .end, .tornTail: break
            case .corruption: Issue.record("truncation at \(cut) reported as corruption")
            }
        }
    }

    /// A flipped bit is detected and never applied: every record yielded is an original one; damage
    /// before the last commit marker is reported as corruption.
    @Test func randomBitFlipsAreDetectedNeverApplied() throws {
        let (bytes, records, _, markerEnds) = Self.segment()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var damaged = bytes
            let position = Int.random(in: WALSegmentHeader.size..<bytes.count, using: &rng)
            damaged[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            let (result, seen) = try scan(damaged + [UInt8](repeating: 0, count: 256))
            for record in seen { #expect(records.contains(record), "a damaged record was accepted (flip at \(position))") }
            #expect(seen.count < records.count || seen == records)
            if seen != records, position < markerEnds[markerEnds.count - 2] {
                if case .corruption = result.stop {} else { Issue.record("damage at \(position) before completed writes was not reported as corruption: \(result.stop)") }
            }
        }
    }

    @Test func forceRecoverySkipsTheDamagedRegion() throws {
        let (bytes, records, recordEnds, _) = Self.segment()
        var damaged = bytes
        damaged[recordEnds[0] + 20] ^= 0xFF  // inside record 2 (batch 2)
        let (strict, strictSeen) = try scan(damaged)
        guard case .corruption = strict.stop else { Issue.record("expected corruption, got \(strict.stop)"); return }
        #expect(strictSeen == [records[0]])
        let (forced, forcedSeen) = try scan(damaged, force: true)
        #expect(forcedSeen.contains(records.last!))
        #expect(!forcedSeen.contains(records[1]))
        if case .corruption = forced.stop {} else { Issue.record("the first damage is still reported") }
    }

    @Test func aBadHeaderIsRejected() {
        var (bytes, _, _, _) = Self.segment()
        bytes[3] ^= 1
        #expect(throws: DecodeError.self) { _ = try scan(bytes) }
    }
}
