import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A file system that fails on command, for tests of disk full, I/O errors, short writes and failed
/// fsyncs (in the spirit of SQLite's fault-injection VFS). It wraps the real one.
public final class FaultInjectingFileSystem: FileSystem {
    public enum Fault: Sendable, Equatable {
        /// The next matching writes fail with this errno (ENOSPC, EIO, ...).
        case writeError(Int32)
        /// The next matching write stores only `bytes` bytes, then fails with ENOSPC (a short write).
        case shortWrite(bytes: Int)
        /// The next matching syncs fail with this errno.
        case syncError(Int32)
    }

    struct State {
        var faults: [(fault: Fault, pathContains: String, remaining: Int)] = []
        var writes = 0
        var syncs = 0
    }

    private let real = PosixFileSystem()
    let state = Mutex(State())

    public init() {}

    /// Arms `fault` for the next `times` matching operations on paths containing `pathContains`.
    public func inject(_ fault: Fault, times: Int = 1, pathContains: String = "") {
        state.withLock { $0.faults.append((fault, pathContains, times)) }
    }

    public func clearFaults() { state.withLock { $0.faults.removeAll() } }

    public var counts: (writes: Int, syncs: Int) { state.withLock { ($0.writes, $0.syncs) } }

    /// Takes the first armed fault that matches.
    func take(path: String, isSync: Bool) -> Fault? {
        state.withLock { state in
            if isSync { state.syncs += 1 } else { state.writes += 1 }
            guard let index = state.faults.firstIndex(where: { entry in
                guard entry.remaining > 0, path.contains(entry.pathContains) || entry.pathContains.isEmpty else { return false }
                if case .syncError = entry.fault { return isSync }
                return !isSync
            }) else { return nil }
            state.faults[index].remaining -= 1
            let fault = state.faults[index].fault
            if state.faults[index].remaining == 0 { state.faults.remove(at: index) }
            return fault
        }
    }

    public func openForWriting(_ path: String, create: Bool) throws(StorageError) -> any StorageFile {
        FaultyFile(try real.openForWriting(path, create: create), owner: self)
    }
    public func openForReading(_ path: String) throws(StorageError) -> any StorageFile { try real.openForReading(path) }
    public func readWholeFile(_ path: String) throws(StorageError) -> [UInt8] { try real.readWholeFile(path) }
    public func list(_ directory: String) throws(StorageError) -> [String] { try real.list(directory) }
    public func createDirectory(_ path: String) throws(StorageError) { try real.createDirectory(path) }
    public func rename(_ from: String, to: String) throws(StorageError) {
        if case .writeError(let code)? = take(path: to, isSync: false) { throw StorageError("rename", to, code: code) }
        try real.rename(from, to: to)
    }
    public func remove(_ path: String) throws(StorageError) { try real.remove(path) }
    public func removeDirectory(_ path: String) throws(StorageError) { try real.removeDirectory(path) }
    public func syncDirectory(_ path: String) throws(StorageError) {
        if case .syncError(let code)? = take(path: path, isSync: true) { throw StorageError("fsync", path, code: code) }
        try real.syncDirectory(path)
    }
    public func exists(_ path: String) -> Bool { real.exists(path) }
}

final class FaultyFile: StorageFile {
    let inner: any StorageFile
    let owner: FaultInjectingFileSystem

    init(_ inner: any StorageFile, owner: FaultInjectingFileSystem) {
        self.inner = inner
        self.owner = owner
    }

    var path: String { inner.path }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        switch owner.take(path: path, isSync: false) {
        case .writeError(let code)?:
            throw StorageError("pwrite", path, code: code)
        case .shortWrite(let count)?:
            try inner.write(UnsafeRawBufferPointer(rebasing: bytes[0..<min(count, bytes.count)]), at: offset)
            throw StorageError("pwrite", path, code: ENOSPC)
        default:
            try inner.write(bytes, at: offset)
        }
    }

    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8] { try inner.read(count: count, at: offset) }

    func sync(dataOnly: Bool) throws(StorageError) {
        if case .syncError(let code)? = owner.take(path: path, isSync: true) {
            throw StorageError(dataOnly ? "fdatasync" : "fsync", path, code: code)
        }
        try inner.sync(dataOnly: dataOnly)
    }

    func size() throws(StorageError) -> Int { try inner.size() }
    func truncate(to size: Int) throws(StorageError) { try inner.truncate(to: size) }

    func allocate(size: Int) throws(StorageError) {
        switch owner.take(path: path, isSync: false) {
        case .writeError(let code)?: throw StorageError("posix_fallocate", path, code: code)
        case .shortWrite?: throw StorageError("posix_fallocate", path, code: ENOSPC)
        default: try inner.allocate(size: size)
        }
    }
    func close() { inner.close() }
}
