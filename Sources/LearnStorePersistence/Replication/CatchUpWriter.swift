import LearnStoreModel

/// The paths a catch-up copy may write in a data directory: `wal/removed-segments`,
/// `wal/wal-<20 digits>.log` and `tenants/<tenant>/snapshot-<20 digits>.lss`. Anything else from a
/// primary is refused, so a copy never writes outside the WAL and snapshot files.
public enum CatchUpPath {
    public static let maximumBytes = 256

    public static func isValid(_ path: String) -> Bool {
        guard path.utf8.count <= maximumBytes else { return false }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2, parts[0] == "wal" {
            return parts[1] == RemovedSegmentsFile.name || WALSegmentHeader.firstLSN(fromFileName: parts[1]) != nil
        }
        if parts.count == 3, parts[0] == "tenants" {
            return CallerIdentity.isValidTenantID(parts[1]) && SnapshotHeader.sequence(fromFileName: parts[2]) != nil
        }
        return false
    }
}

/// `<data dir>/catch-up/`: a copy of a primary's files being received. Files are staged flat, as
/// `file-<n>`; `manifest` names where each goes; `epochs` is the primary's epoch history; `complete`,
/// written last, makes the copy the node's data (``CatchUpInstall``).
public struct CatchUpStaging: Sendable {
    public let data: DataDirectory
    public var directory: String { data.path + "/catch-up" }
    var manifestPath: String { directory + "/manifest" }
    var epochsPath: String { directory + "/epochs" }
    var completePath: String { directory + "/complete" }
    func stagedPath(_ index: Int) -> String { directory + "/file-\(index)" }

    public init(_ data: DataDirectory) { self.data = data }

    static let manifestHeader = "learnstore-catch-up 1"

    static func encodeManifest(throughLSN: UInt64, paths: [String]) -> [UInt8] {
        Array((([manifestHeader, String(throughLSN)] + paths).joined(separator: "\n") + "\n").utf8)
    }

    static func decodeManifest(_ bytes: [UInt8]) throws(LearnStoreError) -> (throughLSN: UInt64, paths: [String]) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, lines[0] == manifestHeader, lines.last == "", let through = UInt64(lines[1]) else {
            throw LearnStoreError(.storageUnavailable, "catch-up/manifest is damaged")
        }
        let paths = Array(lines[2..<(lines.count - 1)])
        guard paths.allSatisfy(CatchUpPath.isValid) else { throw LearnStoreError(.storageUnavailable, "catch-up/manifest names a path a copy may not write") }
        return (through, paths)
    }
}

/// Receives a primary's copy into the staging directory, checking everything the primary announces
/// (paths, sizes, order, totals) before it touches the disk. Each file is written, zero-extended to
/// its size and synced; `finish` makes the copy complete. The node's own data is untouched until
/// ``CatchUpInstall`` installs it.
public final class CatchUpWriter {
    public static let maximumFiles = 10_000_000
    public static let maximumFileBytes = 1 << 40

    private let staging: CatchUpStaging
    private let fs: any FileSystem
    private var announced: (files: Int, bytes: Int, throughLSN: UInt64)?
    private var paths: [String] = []
    private var seen = Set<String>()
    private var current: (file: any StorageFile, size: Int, sentBytes: Int, written: Int)?
    public private(set) var receivedBytes = 0

    /// Discards any earlier staging: a copy is always received whole.
    public init(data: DataDirectory, fileSystem: any FileSystem) throws(LearnStoreError) {
        staging = CatchUpStaging(data)
        fs = fileSystem
        do throws(StorageError) {
            try CatchUpInstall.discard(staging, fs)
            try fs.createDurableDirectory(staging.directory)
        } catch { throw error.learnStoreError }
    }

    public func begin(files: Int, bytes: Int, throughLSN: UInt64) throws(LearnStoreError) {
        guard announced == nil else { throw Self.violation("a second BEGIN") }
        guard (0...Self.maximumFiles).contains(files), bytes >= 0 else { throw Self.violation("\(files) files is out of range") }
        announced = (files, bytes, throughLSN)
    }

    public func file(path: String, size: Int, sentBytes: Int) throws(LearnStoreError) {
        guard let announced else { throw Self.violation("FILE before BEGIN") }
        try closeCurrent()
        guard paths.count < announced.files else { throw Self.violation("more files than the \(announced.files) announced") }
        guard CatchUpPath.isValid(path) else { throw Self.violation("'\(path.prefix(CatchUpPath.maximumBytes))' is not a path a copy may write") }
        guard seen.insert(path).inserted else { throw Self.violation("\(path) sent twice") }
        guard (0...Self.maximumFileBytes).contains(size), (0...size).contains(sentBytes) else {
            throw Self.violation("\(path): size \(size) or sent bytes \(sentBytes) out of range")
        }
        guard receivedBytes + sentBytes <= announced.bytes else { throw Self.violation("more bytes than the \(announced.bytes) announced") }
        do throws(StorageError) {
            let file = try fs.openForWriting(staging.stagedPath(paths.count), create: true)
            try file.truncate(to: 0)
            current = (file, size, sentBytes, 0)
        } catch { throw error.learnStoreError }
        paths.append(path)
    }

    public func data(_ bytes: [UInt8]) throws(LearnStoreError) {
        guard let open = current else { throw Self.violation("DATA outside a file") }
        guard open.written + bytes.count <= open.sentBytes else { throw Self.violation("\(paths.last!): more bytes than announced") }
        do throws(StorageError) { try open.file.write(bytes, at: open.written) } catch { throw error.learnStoreError }
        current!.written += bytes.count
        receivedBytes += bytes.count
    }

    /// Every announced file arrived whole: the copy becomes complete (installed at the next start).
    public func finish(history: EpochHistory) throws(LearnStoreError) {
        guard let announced else { throw Self.violation("END before BEGIN") }
        try closeCurrent()
        guard paths.count == announced.files, receivedBytes == announced.bytes else {
            throw Self.violation("END after \(paths.count) of \(announced.files) files and \(receivedBytes) of \(announced.bytes) bytes")
        }
        do throws(StorageError) {
            try write(staging.manifestPath, CatchUpStaging.encodeManifest(throughLSN: announced.throughLSN, paths: paths))
            try write(staging.epochsPath, history.encoded)
            try fs.syncDirectory(staging.directory)
            try write(staging.completePath, [])
            try fs.syncDirectory(staging.directory)
        } catch { throw error.learnStoreError }
    }

    /// Stops without completing: the partial copy is removed.
    public func abandon() {
        current?.file.close()
        current = nil
        try? CatchUpInstall.discard(staging, fs)
    }

    private func closeCurrent() throws(LearnStoreError) {
        guard let open = current else { return }
        current = nil
        defer { open.file.close() }
        guard open.written == open.sentBytes else { throw Self.violation("\(paths.last!): \(open.written) of \(open.sentBytes) bytes") }
        do throws(StorageError) {
            // Zeros after the written bytes, as a preallocated WAL segment has them.
            if open.size > open.written { try open.file.allocate(size: open.size) }
            try open.file.sync(dataOnly: false)
        } catch { throw error.learnStoreError }
    }

    private func write(_ path: String, _ bytes: [UInt8]) throws(StorageError) {
        let file = try fs.openForWriting(path, create: true)
        defer { file.close() }
        try file.truncate(to: 0)
        try file.write(bytes, at: 0)
        try file.sync(dataOnly: false)
    }

    public static func violation(_ what: String) -> LearnStoreError {
        LearnStoreError(.badFrame, "catch-up copy: \(what)")
    }
}
