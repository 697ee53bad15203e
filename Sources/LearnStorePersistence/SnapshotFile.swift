import LearnStoreEngine
import LearnStoreModel
import Zstd

/// Writes and reads snapshot files: header, zstd-compressed blocks with CRC-32C each, trailer
/// (docs/STORAGE-FORMAT.md, "Snapshots").
public enum SnapshotFile {
    public static let blockBytes = 1 << 20
    static let trailerMarker = UInt32.max

    public struct WriteResult: Sendable {
        public var path: String
        public var bytes: Int
        public var uncompressedBytes: Int
        public var blocks: Int
    }

    /// Serializes `capture` into `<directory>/snapshot-<sequence>.lss`: written to a temporary file,
    /// synced, renamed into place, directory synced. A crash never leaves a partial file under the
    /// final name.
    /// `compressors`: how many blocks may be compressed at once on other threads while this one encodes
    /// the next (1: everything on this thread). Blocks are independent frames, so the file is the same
    /// either way.
    public static func write(
        _ capture: TenantCapture, lsn: UInt64, createdAt: Timestamp, directory: String, level: Int = 1,
        compressors: Int = 1, fileSystem fs: any FileSystem
    ) throws -> WriteResult {
        try fs.createDurableDirectory(directory)
        let finalPath = directory + "/" + SnapshotHeader.fileName(sequence: capture.sequence)
        let temporaryPath = finalPath + ".tmp"
        let file = try fs.openForWriting(temporaryPath, create: true)
        defer { file.close() }
        try file.truncate(to: 0)
        let header = SnapshotHeader(
            tenantID: capture.tenantID, sequence: capture.sequence, lsn: lsn, createdAt: createdAt,
            records: UInt64(capture.liveRecords + capture.deletedRecords), outcomeRecords: UInt64(capture.outcomes.recordCount),
            idempotencyKeys: UInt64(capture.idempotency.count))
        var offset = 0
        var pending: [UInt8] = header.encoded
        pending.reserveCapacity(blockBytes + 64)
        var blockChecksums: [UInt8] = []
        var blocks = 0
        var uncompressed = 0
        func flushPending(force: Bool) throws {
            if pending.count >= blockBytes || (force && !pending.isEmpty) {
                try file.write(pending, at: offset)
                offset += pending.count
                pending.removeAll(keepingCapacity: true)
            }
        }
        func appendBlock(_ chunk: [UInt8], _ compressed: [UInt8]) throws {
            let crc = CRC32C.checksum(compressed)
            var frame = ByteWriter(capacity: 12)
            frame.writeU32(UInt32(chunk.count))
            frame.writeU32(UInt32(compressed.count))
            frame.writeU32(crc)
            pending += frame.bytes
            pending += compressed
            withUnsafeBytes(of: crc.littleEndian) { blockChecksums += $0 }
            blocks += 1
            uncompressed += chunk.count
            try flushPending(force: false)
        }
        let pipeline = BlockCompressionPipeline(level: level, width: compressors)
        do {
            try SnapshotStream.encode(capture, chunkBytes: blockBytes) { chunk in try pipeline.submit(chunk, deliver: appendBlock) }
            try pipeline.finish(deliver: appendBlock)
        } catch {
            // Let the blocks still being compressed finish before the file is closed and the error thrown.
            try? pipeline.finish { _, _ in }
            throw error
        }
        var trailer = ByteWriter(capacity: 32)
        trailer.writeU32(trailerMarker)
        trailer.writeU64(UInt64(blocks))
        trailer.writeU64(UInt64(uncompressed))
        trailer.writeU32(CRC32C.checksum(blockChecksums))
        trailer.writeBytes(SnapshotHeader.trailerMagic)
        pending += trailer.bytes
        try flushPending(force: true)
        try file.sync(dataOnly: false)
        try fs.rename(temporaryPath, to: finalPath)
        do { try fs.syncDirectory(directory) } catch { throw RenamedNotSynced(path: finalPath, underlying: error) }
        return WriteResult(path: finalPath, bytes: offset, uncompressedBytes: uncompressed, blocks: blocks)
    }

    /// The file is in place under its final name but the directory sync failed: whether the name
    /// survives a machine crash is unknown (it does survive a killed process).
    public struct RenamedNotSynced: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var underlying: StorageError
        public var description: String { "\(underlying)" }
    }

    /// A snapshot that failed verification: which file, where, and what was expected.
    public struct Damage: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var offset: Int
        public var reason: String
        public var description: String { "\(path) at byte \(offset): \(reason)" }
    }

    public struct Loaded: Sendable {
        public var header: SnapshotHeader
        public var contents: SnapshotStream.Contents
        public var fileBytes: Int
    }

    /// Reads, verifies (header, every block's CRC, zstd checksums, trailer) and decodes a snapshot.
    public static func read(_ path: String, fileSystem fs: any FileSystem) throws -> Loaded {
        let bytes = try fs.readWholeFile(path)
        let stream: (SnapshotHeader, [UInt8])
        do {
            stream = try bytes.withUnsafeBytes { raw throws in try decompress(raw, path: path) }
        }
        let header = stream.0
        do {
            let contents = try stream.1.withUnsafeBytes { raw throws(DecodeError) in
                try SnapshotStream.decode(raw, tenantID: header.tenantID, expectedRecords: header.records)
            }
            return Loaded(header: header, contents: contents, fileBytes: bytes.count)
        } catch {
            throw Damage(path: path, offset: -1, reason: "content: \(error)")
        }
    }

    /// Reads only the header (for listings).
    public static func readHeader(_ path: String, fileSystem fs: any FileSystem) throws -> SnapshotHeader {
        let file = try fs.openForReading(path)
        defer { file.close() }
        let bytes = try file.read(count: 4096, at: 0)
        let result: Result<SnapshotHeader, DecodeError> = bytes.withUnsafeBytes { raw in
            do throws(DecodeError) { return .success(try SnapshotHeader.decode(raw).0) } catch { return .failure(error) }
        }
        switch result {
        case .success(let header): return header
        case .failure(let error): throw Damage(path: path, offset: error.offset, reason: error.reason)
        }
    }

    /// Verifies every checksum and returns the header and the uncompressed stream.
    static func decompress(_ raw: UnsafeRawBufferPointer, path: String) throws -> (SnapshotHeader, [UInt8]) {
        let header: SnapshotHeader
        let headerLength: Int
        do {
            (header, headerLength) = try SnapshotHeader.decode(raw)
        } catch {
            throw Damage(path: path, offset: error.offset, reason: error.reason)
        }
        var offset = headerLength
        var stream: [UInt8] = []
        var checksums: [UInt8] = []
        var blocks: UInt64 = 0
        while true {
            guard raw.count - offset >= 4 else { throw Damage(path: path, offset: offset, reason: "file ends before the trailer (truncated)") }
            let uncompressedLength = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            if uncompressedLength == trailerMarker {
                guard raw.count - offset == 32 else { throw Damage(path: path, offset: offset, reason: "trailer has \(raw.count - offset) bytes, expected 32") }
                let blockCount = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self))
                let total = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt64.self))
                let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 20, as: UInt32.self))
                guard Array(raw[(offset + 24)..<(offset + 32)]) == SnapshotHeader.trailerMagic else {
                    throw Damage(path: path, offset: offset + 24, reason: "bad trailer magic")
                }
                guard blockCount == blocks, total == UInt64(stream.count), crc == CRC32C.checksum(checksums) else {
                    throw Damage(path: path, offset: offset, reason: "trailer says \(blockCount) blocks / \(total) bytes, found \(blocks) / \(stream.count)")
                }
                return (header, stream)
            }
            guard raw.count - offset >= 12 else { throw Damage(path: path, offset: offset, reason: "truncated block header") }
            let compressedLength = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
            let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            guard uncompressedLength <= UInt32(blockBytes * 2), compressedLength <= raw.count - offset - 12 else {
                throw Damage(path: path, offset: offset, reason: "implausible block lengths \(uncompressedLength)/\(compressedLength)")
            }
            let compressed = UnsafeRawBufferPointer(rebasing: raw[(offset + 12)..<(offset + 12 + compressedLength)])
            let actual = CRC32C.checksum(compressed)
            guard actual == crc else {
                throw Damage(path: path, offset: offset, reason: "block \(blocks) checksum mismatch (stored 0x\(String(crc, radix: 16)), computed 0x\(String(actual, radix: 16)))")
            }
            do {
                let block = try Zstd.decompress(compressed, maxSize: Int(uncompressedLength))
                guard block.count == Int(uncompressedLength) else {
                    throw Damage(path: path, offset: offset, reason: "block \(blocks) holds \(block.count) bytes, its header says \(uncompressedLength)")
                }
                stream += block
            } catch {
                throw Damage(path: path, offset: offset, reason: "block \(blocks): \(error)")
            }
            withUnsafeBytes(of: crc.littleEndian) { checksums += $0 }
            blocks += 1
            offset += 12 + compressedLength
        }
    }
}
