import LearnStoreModel

/// The WAL's segment files at one moment (``WriteAheadLog/captureSegments()``).
public struct WALSegmentCapture: Sendable {
    public struct Segment: Sendable {
        public var firstLSN: UInt64
        /// Bytes from the start of the file through the end of the last write.
        public var writtenBytes: Int
        /// The file's size (preallocated: the rest is zeros).
        public var size: Int
        public var file: any StorageFile
    }

    public var segments: [Segment] = []
    /// The `removed-segments` file's bytes, if the log has one.
    public var removedSegments: [UInt8]?
    /// The segments hold every record up to here that is not in a snapshot: their newest record, or the
    /// LSN before the newest segment when that holds none yet.
    public var lastLSN: UInt64 = 0

    public func close() {
        for segment in segments { segment.file.close() }
    }
}

/// What a primary sends a replica that must copy it (its WAL no longer holds the replica's next
/// record): the files from which recovery rebuilds every tenant through `throughLSN`, as the primary's
/// own recovery would. That is the kept WAL segments as they stand between two writes, the
/// `removed-segments` file, and per tenant its newest snapshot at or below `throughLSN` (a newer one
/// would hold writes of that tenant the copied segments do not, and make recovery resume above
/// records of other tenants the copy lacks). A replica recovers from them and follows from
/// `throughLSN`.
public struct CatchUpSource: Sendable {
    public struct File: Sendable {
        /// The path in the data directory (``CatchUpPath``).
        public var path: String
        public var size: Int
        /// The first `sentBytes` bytes are the file's; the rest are zeros.
        public var sentBytes: Int
        public var file: any StorageFile
    }

    public var throughLSN: UInt64
    public var files: [File]
    public var totalBytes: Int { files.reduce(0) { $0 + $1.sentBytes } }

    /// Opens the files. Blocks until the log has made every captured record durable: call it off
    /// the event loops.
    public static func open(wal: WriteAheadLog, data: DataDirectory, fileSystem fs: any FileSystem) throws(LearnStoreError) -> CatchUpSource {
        let capture = try capture(wal)
        guard wal.waitUntilLocallyDurable(capture.lastLSN) else {
            capture.close()
            throw LearnStoreError(.storageUnavailable, "the primary's log did not make LSN \(capture.lastLSN) durable")
        }
        return try open(capture, data: data, fileSystem: fs)
    }

    /// The first half of ``open(wal:data:fileSystem:)``: the log's segments between two writes.
    public static func capture(_ wal: WriteAheadLog) throws(LearnStoreError) -> WALSegmentCapture {
        guard !wal.hasFailures else {
            throw LearnStoreError(.storageUnavailable, "the primary's log has failed writes; a replica can copy it once the primary has restarted")
        }
        do { return try wal.captureSegments() } catch { throw error.learnStoreError }
    }

    /// The second half, once every captured record is durable: the snapshots to go with the segments.
    public static func open(_ capture: WALSegmentCapture, data: DataDirectory, fileSystem fs: any FileSystem) throws(LearnStoreError) -> CatchUpSource {
        var files: [File] = []
        do throws(LearnStoreError) {
            var removed: [String: UInt64] = [:]
            if let bytes = capture.removedSegments {
                do { removed = try RemovedSegmentsFile.decode(bytes) } catch {
                    throw LearnStoreError(.storageUnavailable, "the primary's \(RemovedSegmentsFile.name) is damaged: \(error)")
                }
                let file = MemoryFile(path: "wal/" + RemovedSegmentsFile.name, bytes: bytes)
                files.append(File(path: file.path, size: bytes.count, sentBytes: bytes.count, file: file))
            }
            files += try snapshots(data: data, fs: fs, throughLSN: capture.lastLSN, removed: removed)
            for segment in capture.segments {
                files.append(File(path: "wal/" + WALSegmentHeader.fileName(firstLSN: segment.firstLSN), size: segment.size,
                                  sentBytes: min(segment.writtenBytes, segment.size), file: segment.file))
            }
        } catch {
            capture.close()
            for file in files { file.file.close() }
            throw error
        }
        return CatchUpSource(throughLSN: capture.lastLSN, files: files)
    }

    public func close() {
        for file in files { file.file.close() }
    }

    /// Per tenant, its newest snapshot at or below `throughLSN`; it must reach what removed segments
    /// held of the tenant, or the copy would lack those writes.
    static func snapshots(data: DataDirectory, fs: any FileSystem, throughLSN: UInt64, removed: [String: UInt64]) throws(LearnStoreError) -> [File] {
        var chosen: [File] = []
        do {
            for tenant in try data.tenants(fs) {
                if let file = try snapshot(of: tenant, data: data, fs: fs, throughLSN: throughLSN, atLeast: removed[tenant] ?? 0) {
                    chosen.append(file)
                } else if let needed = removed[tenant] {
                    throw LearnStoreError(
                        .loading, "tenant \(tenant) has no snapshot between LSN \(needed) and \(throughLSN) to copy (its snapshots were replaced meanwhile); retry")
                }
            }
        } catch {
            for file in chosen { file.file.close() }
            if let error = error as? LearnStoreError { throw error }
            if let error = error as? StorageError { throw error.learnStoreError }
            throw LearnStoreError(.internalError, "\(error)")
        }
        return chosen
    }

    private static func snapshot(of tenant: String, data: DataDirectory, fs: any FileSystem, throughLSN: UInt64, atLeast floor: UInt64) throws -> File? {
        for sequence in try data.snapshots(of: tenant, fs).reversed() {
            // Rotation may remove an older snapshot between the listing and here.
            guard let file = try? fs.openForReading(data.snapshotPath(tenant, sequence: sequence)) else { continue }
            let size = try file.size()
            let header = try? SnapshotFile.readHeader(data.snapshotPath(tenant, sequence: sequence), fileSystem: fs)
            guard let header, header.lsn <= throughLSN, header.lsn >= floor else {
                file.close()
                // Older snapshots are further below what removed segments held.
                if let header, header.lsn < floor { return nil }
                continue
            }
            return File(path: "tenants/\(tenant)/" + SnapshotHeader.fileName(sequence: sequence), size: size, sentBytes: size, file: file)
        }
        return nil
    }
}

/// Bytes already in memory, served as a file.
final class MemoryFile: StorageFile, @unchecked Sendable {
    let path: String
    private let bytes: [UInt8]

    init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) { throw StorageError("write", path, code: 30) }
    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8] {
        guard offset >= 0, offset <= bytes.count else { return [] }
        return Array(bytes[offset..<min(bytes.count, offset + max(0, count))])
    }
    func sync(dataOnly: Bool) throws(StorageError) {}
    func size() throws(StorageError) -> Int { bytes.count }
    func truncate(to size: Int) throws(StorageError) { throw StorageError("truncate", path, code: 30) }
    func allocate(size: Int) throws(StorageError) { throw StorageError("fallocate", path, code: 30) }
    func close() {}
}
