import LearnStoreModel

/// Reads committed WAL records from the segment files in LSN order, from a position on: the shared
/// source of the change feed (filtered to one tenant) and, later, of replication (filtered to a
/// partition). It reads only what the log has written and committed; a record that failed, or bytes
/// not yet readable whole, end a read without moving past them, so the next read starts there again.
public final class WALTailReader: @unchecked Sendable {
    /// Where the next read starts: a segment, an offset in it, and the LSN of the last record before.
    public struct Position: Sendable, Equatable {
        public var segmentFirstLSN: UInt64
        public var offset: Int
        public var lastLSN: UInt64

        public init(segmentFirstLSN: UInt64, offset: Int = WALSegmentHeader.size, lastLSN: UInt64? = nil) {
            self.segmentFirstLSN = segmentFirstLSN
            self.offset = offset
            self.lastLSN = lastLSN ?? (segmentFirstLSN == 0 ? 0 : segmentFirstLSN - 1)
        }
    }

    public struct Batch: Sendable {
        /// The wanted records, in LSN order.
        public var records: [WALRecord] = []
        /// Whether the read stopped at the end of what is committed (rather than at its limit).
        public var caughtUp = false
        /// Why the read stopped short of the commit mark, when it did (a record not readable whole).
        public var stalled: String?
    }

    public enum ReadError: Error, Sendable, Equatable {
        /// The segment holding the position was removed (retention, or the window moved past it).
        case segmentGone(UInt64)
        case storage(String)
    }

    public private(set) var position: Position
    private let walDirectory: String
    private let fileSystem: any FileSystem
    private var file: (any StorageFile)?
    private var fileFirstLSN: UInt64 = 0
    static let chunkBytes = 1 << 20

    public init(walDirectory: String, fileSystem: any FileSystem, position: Position) {
        self.walDirectory = walDirectory
        self.fileSystem = fileSystem
        self.position = position
    }

    deinit { file?.close() }

    public func close() {
        file?.close()
        file = nil
    }

    /// Continues from `position` instead (a reader that knows where its next wanted record is).
    public func move(to position: Position) {
        close()
        self.position = position
    }

    /// Reads on from the position: at most `maximumRecords` wanted records and about `maximumBytes` of
    /// the log. `wants` sees each committed record's tenant (its UTF-8 bytes, not yet validated: compare
    /// them, e.g. with `TenantFilter`) and sequence; only wanted ones are decoded.
    public func read(
        _ tail: WALTail, isFailed: (UInt64) -> Bool, maximumRecords: Int, maximumBytes: Int = 4 << 20,
        wants: (_ tenantUTF8: UnsafeRawBufferPointer, _ sequence: UInt64) -> Bool
    ) throws(ReadError) -> Batch {
        let result: Result<Batch, ReadError> = withoutActuallyEscaping(wants) { wants in
            do throws(ReadError) {
                return .success(try readEscaping(tail, isFailed: isFailed, maximumRecords: maximumRecords, maximumBytes: maximumBytes, wants: wants, passed: nil))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Reads on from the position and returns the committed records above `after` undecoded, byte for
    /// byte as the log holds them (each checksum verified): what a primary ships to a replica.
    /// `records` counts them.
    public func readRaw(_ tail: WALTail, after: UInt64 = 0, isFailed: (UInt64) -> Bool, maximumBytes: Int) throws(ReadError) -> (bytes: [UInt8], records: Int, batch: Batch) {
        var bytes: [UInt8] = []
        var records = 0
        let batch = try readEscaping(tail, isFailed: isFailed, maximumRecords: .max, maximumBytes: maximumBytes, wants: { _, _ in false }) { record, lsn in
            guard lsn > after else { return }
            bytes.append(contentsOf: record)
            records += 1
        }
        return (bytes, records, batch)
    }

    private func readEscaping(
        _ tail: WALTail, isFailed: (UInt64) -> Bool, maximumRecords: Int, maximumBytes: Int,
        wants: @escaping (_ tenantUTF8: UnsafeRawBufferPointer, _ sequence: UInt64) -> Bool,
        passed: ((UnsafeRawBufferPointer, UInt64) -> Void)?
    ) throws(ReadError) -> Batch {
        var batch = Batch()
        var bytesRead = 0
        while batch.records.count < maximumRecords && bytesRead < maximumBytes {
            guard let index = tail.segments.firstIndex(where: { $0.firstLSN == position.segmentFirstLSN }) else {
                throw .segmentGone(position.segmentFirstLSN)
            }
            let segment = tail.segments[index]
            if position.offset >= segment.writtenBytes {
                // Everything written here is read; a newer segment means no more will be.
                guard index + 1 < tail.segments.count else {
                    batch.caughtUp = true
                    return batch
                }
                position = Position(segmentFirstLSN: tail.segments[index + 1].firstLSN)
                continue
            }
            let bytes = try chunk(segment: segment, limit: max(WALRecord.headerSize, maximumBytes - bytesRead))
            bytesRead += bytes.count
            var consumed = 0
            var stop: String?
            bytes.withUnsafeBytes { raw in
                while consumed < raw.count && batch.records.count < maximumRecords {
                    var wantedHere = false
                    let examined = WALSegmentScanner.examine(
                        raw, at: consumed, after: position.lastLSN,
                        wantsTenantBytes: { tenant, sequence in
                            wantedHere = wants(tenant, sequence)
                            return wantedHere
                        })
                    switch examined {
                    case .marker(let length):
                        consumed += length
                    case .skipped(let lsn, let length):
                        guard lsn <= tail.committedLSN else { stop = ""; return }
                        guard !isFailed(lsn) else { stop = "a failed write at LSN \(lsn) waits to be wiped"; return }
                        passed?(UnsafeRawBufferPointer(rebasing: raw[consumed..<(consumed + length)]), lsn)
                        consumed += length
                        position.lastLSN = lsn
                    case .record(let record, let length):
                        guard record.lsn <= tail.committedLSN else { stop = ""; return }
                        guard !isFailed(record.lsn) else { stop = "a failed write at LSN \(record.lsn) waits to be wiped"; return }
                        if wantedHere { batch.records.append(record) }
                        consumed += length
                        position.lastLSN = record.lsn
                    case .cutShort(let reason):
                        // The chunk ends inside a record: read again from it (a larger chunk if needed).
                        if consumed == 0 { stop = reason }
                        return
                    case .end, .damaged:
                        stop = ""
                        if case .damaged(let reason) = examined { stop = reason }
                        return
                    }
                }
            }
            position.offset += consumed
            if let stop {
                batch.caughtUp = true
                if !stop.isEmpty && position.lastLSN < tail.committedLSN { batch.stalled = "WAL segment \(position.segmentFirstLSN) at byte \(position.offset): \(stop)" }
                return batch
            }
        }
        return batch
    }

    /// The bytes from the position to the segment's written end, at most a chunk, or the whole record
    /// that starts there when it is larger.
    private func chunk(segment: WALTail.Segment, limit: Int) throws(ReadError) -> [UInt8] {
        if file == nil || fileFirstLSN != segment.firstLSN {
            file?.close()
            file = nil
            let path = walDirectory + "/" + WALSegmentHeader.fileName(firstLSN: segment.firstLSN)
            guard fileSystem.exists(path) else { throw .segmentGone(segment.firstLSN) }
            do { file = try fileSystem.openForReading(path) } catch { throw .storage("\(error)") }
            fileFirstLSN = segment.firstLSN
        }
        let available = segment.writtenBytes - position.offset
        var count = min(available, Self.chunkBytes, limit)
        do {
            var bytes = try file!.read(count: count, at: position.offset)
            if bytes.count >= WALRecord.headerSize {
                let length = Int(UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
                let whole = WALRecord.headerSize + length
                if length <= WALRecord.maximumBodyBytes, whole > bytes.count, whole <= available {
                    count = whole
                    bytes = try file!.read(count: count, at: position.offset)
                }
            }
            return bytes
        } catch {
            throw .storage("\(error)")
        }
    }
}

/// One tenant's id as the WAL stores it, to pick its records out of a read without building a string
/// for every other tenant's.
public struct TenantFilter: Sendable {
    public let tenantID: String
    private let utf8: [UInt8]

    public init(_ tenantID: String) {
        self.tenantID = tenantID
        self.utf8 = Array(tenantID.utf8)
    }

    public func matches(_ tenantUTF8: UnsafeRawBufferPointer) -> Bool {
        tenantUTF8.count == utf8.count && utf8.withUnsafeBytes { $0.elementsEqual(tenantUTF8) }
    }
}
