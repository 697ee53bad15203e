import FuzzSupport
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Logging
import Zstd

/// The WAL and snapshot readers. The first input byte picks what the rest is:
///
/// 0. a raw WAL segment, scanned as recovery scans it (checksums included, so mostly rejected early);
/// 1. WAL record bodies (u16 length + body each) that the harness seals with valid lengths and
///    checksums into a segment, with commit markers, then recovers with ``Recovery`` from an
///    in-memory data directory: the scanner, the record decoder and the replay into a tenant all run;
/// 2. one WAL record body, decoded and applied to an empty tenant;
/// 3. a raw snapshot file, read as recovery reads it;
/// 4. a snapshot's uncompressed content, which the harness frames into a valid file (header, one
///    zstd block, trailer) and reads and loads into a tenant.
///
/// What recovery or a snapshot load produced must itself survive a snapshot: encoded and decoded again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let control = input.u8()
    switch control % 5 {
    case 0: rawSegment(input.rest(), skipCorruption: control & 0x80 != 0)
    case 1: sealedSegment(&input, force: control & 0x80 != 0, markers: control & 0x40 == 0)
    case 2: recordBody(input.rest())
    case 3: rawSnapshot(input.rest())
    default: framedSnapshot(&input)
    }
    return 0
}

let directory = DataDirectory("/fuzz")
let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

func rawSegment(_ bytes: UnsafeRawBufferPointer, skipCorruption: Bool) {
    _ = try? WALSegmentScanner.scan(bytes, previousLSN: 0, skipCorruption: skipCorruption) { record, _ in
        _ = record.encoded
    }
}

func sealedSegment(_ input: inout FuzzInput, force: Bool, markers: Bool) {
    var segment = WALSegmentHeader(firstLSN: 1, createdAt: Timestamp(milliseconds: 1_704_067_200_000)).encoded
    var lastLSN: UInt64 = 0
    while !input.isAtEnd {
        let length = Int(input.u16())
        let body = Array(input.take(length))
        guard body.count >= 8 else { break }
        segment += sealed(body)
        if markers {
            lastLSN = UInt64(littleEndian: body.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            segment += marker(lastLSN)
        }
    }
    let fs = MemoryFileSystem([directory.segmentPath(1): segment])
    var options = Recovery.Options(directory: directory)
    options.fileSystem = fs
    options.forceRecovery = force
    options.readOnly = true
    guard let outcome = try? Recovery(options: options, logger: quiet).run() else { return }
    for state in outcome.states.values { SnapshotCheck.roundTrip(state) }
}

/// A commit marker for one record (docs/STORAGE-FORMAT.md; its initializer is internal).
func marker(_ lastLSN: UInt64) -> [UInt8] {
    var body = ByteWriter(capacity: WALCommitMarker.bodyBytes)
    body.writeU64(lastLSN)
    body.writeU32(1)
    var writer = ByteWriter(capacity: WALCommitMarker.size)
    writer.writeU32(WALCommitMarker.flag | UInt32(WALCommitMarker.bodyBytes))
    writer.writeU32(CRC32C.checksum(body.bytes))
    writer.writeBytes(body.bytes)
    return writer.bytes
}

/// A record with a valid length and checksum around `body`.
func sealed(_ body: [UInt8]) -> [UInt8] {
    var writer = ByteWriter(capacity: body.count + 8)
    writer.writeU32(UInt32(body.count))
    writer.writeU32(CRC32C.checksum(body))
    writer.writeBytes(body)
    return writer.bytes
}

func recordBody(_ body: UnsafeRawBufferPointer) {
    guard let record = try? WALRecord.decodeBody(body) else { return }
    WALCheck.roundTrip(record)
    var state = TenantState(tenantID: record.entry.tenantID.isEmpty ? "t" : record.entry.tenantID)
    state.apply(record.entry.mutations, sequence: record.entry.sequence)
    SnapshotCheck.roundTrip(state)
}

func rawSnapshot(_ bytes: UnsafeRawBufferPointer) {
    let path = directory.snapshotPath("t", sequence: 1)
    let fs = MemoryFileSystem([path: Array(bytes)])
    guard let loaded = try? SnapshotFile.read(path, fileSystem: fs) else { return }
    load(loaded)
}

func framedSnapshot(_ input: inout FuzzInput) {
    let records = UInt64(input.u8())
    let sequence = UInt64(input.u16())
    let stream = Array(input.rest())
    guard !stream.isEmpty, let compressed = try? Zstd.compress(stream, level: 1) else { return }
    var file = SnapshotHeader(tenantID: "t", sequence: sequence, lsn: sequence, createdAt: Timestamp(milliseconds: 1_704_067_200_000),
                              records: records, outcomeRecords: 0, idempotencyKeys: 0).encoded
    var writer = ByteWriter()
    let blockChecksum = CRC32C.checksum(compressed)
    writer.writeU32(UInt32(stream.count))
    writer.writeU32(UInt32(compressed.count))
    writer.writeU32(blockChecksum)
    writer.writeBytes(compressed)
    writer.writeU32(UInt32.max)
    writer.writeU64(1)
    writer.writeU64(UInt64(stream.count))
    var checksums = ByteWriter()
    checksums.writeU32(blockChecksum)
    writer.writeU32(CRC32C.checksum(checksums.bytes))
    writer.writeBytes(SnapshotHeader.trailerMagic)
    file += writer.bytes
    let path = directory.snapshotPath("t", sequence: sequence)
    let fs = MemoryFileSystem([path: file])
    let loaded: SnapshotFile.Loaded
    do {
        loaded = try SnapshotFile.read(path, fileSystem: fs)
    } catch let damage as SnapshotFile.Damage where damage.offset == -1 {
        return  // the content was rejected, as it should be
    } catch {
        fuzzFailure("a snapshot the harness framed correctly was rejected for its framing: \(error)")
    }
    load(loaded)
}

func load(_ loaded: SnapshotFile.Loaded) {
    var state = TenantState(tenantID: loaded.header.tenantID.isEmpty ? "t" : loaded.header.tenantID)
    state.load(store: loaded.contents.store, idempotency: loaded.contents.idempotency, outcomes: loaded.contents.outcomes,
               sequence: loaded.header.sequence)
    SnapshotCheck.roundTrip(state)
}
