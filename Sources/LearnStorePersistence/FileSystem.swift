import LearnStoreModel
#if canImport(Glibc)
import Glibc
#endif

/// A failed file operation: what, on which path, and the errno.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var code: Int32

    public init(_ operation: String, _ path: String, code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))" }

    public var learnStoreError: LearnStoreError {
        LearnStoreError(.storageUnavailable, "storage failed: \(description)")
    }
}

/// The file operations persistence needs. The real one is POSIX; tests use
/// ``FaultInjectingFileSystem`` to produce ENOSPC, EIO, short writes and failed syncs.
public protocol FileSystem: Sendable {
    func openForWriting(_ path: String, create: Bool) throws(StorageError) -> any StorageFile
    func openForReading(_ path: String) throws(StorageError) -> any StorageFile
    func readWholeFile(_ path: String) throws(StorageError) -> [UInt8]
    func list(_ directory: String) throws(StorageError) -> [String]
    func createDirectory(_ path: String) throws(StorageError)
    func rename(_ from: String, to: String) throws(StorageError)
    func remove(_ path: String) throws(StorageError)
    /// Removes an empty directory (a missing one is not an error).
    func removeDirectory(_ path: String) throws(StorageError)
    func syncDirectory(_ path: String) throws(StorageError)
    func exists(_ path: String) -> Bool
}

extension FileSystem {
    /// Creates `path` and any missing parents so that a machine crash keeps them: once a directory is
    /// created, its parent is synced (a new entry is durable only then, whatever is synced inside it).
    /// An existing directory costs one check, so one whose parent could not be synced is removed
    /// again (it is empty), and the next call retries.
    public func createDurableDirectory(_ path: String) throws(StorageError) {
        guard !exists(path) else { return }
        let slash = path.lastIndex(of: "/")
        let parent = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        if parent != "/" && parent != "." { try createDurableDirectory(parent) }
        try createDirectory(path)
        do { try syncDirectory(parent) } catch {
            try? removeDirectory(path)
            throw error
        }
    }
}

/// An open file.
public protocol StorageFile: AnyObject, Sendable {
    var path: String { get }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError)
    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8]
    /// fdatasync (`dataOnly`) or fsync.
    func sync(dataOnly: Bool) throws(StorageError)
    func size() throws(StorageError) -> Int
    func truncate(to size: Int) throws(StorageError)
    /// Reserves `size` bytes of disk for the file (`posix_fallocate`): reads of bytes never written
    /// return zeros, and a full disk shows here rather than at a later write.
    func allocate(size: Int) throws(StorageError)
    func close()
}

extension StorageFile {
    public func write(_ bytes: [UInt8], at offset: Int) throws(StorageError) {
        let result: Result<Void, StorageError> = bytes.withUnsafeBytes { raw in
            do throws(StorageError) { try write(raw, at: offset); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }
}

/// POSIX files.
public struct PosixFileSystem: FileSystem {
    public init() {}

    public func openForWriting(_ path: String, create: Bool) throws(StorageError) -> any StorageFile {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard fd >= 0 else { throw StorageError("open", path, code: errno) }
        return PosixFile(fd: fd, path: path)
    }

    public func openForReading(_ path: String) throws(StorageError) -> any StorageFile {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError("open", path, code: errno) }
        return PosixFile(fd: fd, path: path)
    }

    public func readWholeFile(_ path: String) throws(StorageError) -> [UInt8] {
        let file = try openForReading(path)
        defer { file.close() }
        return try file.read(count: try file.size(), at: 0)
    }

    public func list(_ directory: String) throws(StorageError) -> [String] {
        guard let dir = opendir(directory) else { throw StorageError("opendir", directory, code: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func createDirectory(_ path: String) throws(StorageError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw StorageError("mkdir", current, code: errno) }
        }
    }

    public func rename(_ from: String, to: String) throws(StorageError) {
        guard Glibc.rename(from, to) == 0 else { throw StorageError("rename", "\(from) -> \(to)", code: errno) }
    }

    public func remove(_ path: String) throws(StorageError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw StorageError("unlink", path, code: errno) }
    }

    public func removeDirectory(_ path: String) throws(StorageError) {
        guard rmdir(path) == 0 || errno == ENOENT else { throw StorageError("rmdir", path, code: errno) }
    }

    public func syncDirectory(_ path: String) throws(StorageError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError("open", path, code: errno) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw StorageError("fsync", path, code: errno) }
    }

    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

final class PosixFile: StorageFile {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { Glibc.close(fd) }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        var written = 0
        while written < bytes.count {
            let result = pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw StorageError("pwrite", path, code: errno)
            }
            if result == 0 { throw StorageError("pwrite", path, code: EIO) }
            written += result
        }
    }

    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw StorageError("pread", path, code: errno)
            }
            if result == 0 { break }
            done += result
        }
        if done < count { bytes.removeLast(count - done) }
        return bytes
    }

    func sync(dataOnly: Bool) throws(StorageError) {
        let result = dataOnly ? fdatasync(fd) : fsync(fd)
        guard result == 0 else { throw StorageError(dataOnly ? "fdatasync" : "fsync", path, code: errno) }
    }

    func size() throws(StorageError) -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StorageError("fstat", path, code: errno) }
        return Int(info.st_size)
    }

    func truncate(to size: Int) throws(StorageError) {
        guard ftruncate(fd, off_t(size)) == 0 else { throw StorageError("ftruncate", path, code: errno) }
    }

    func allocate(size: Int) throws(StorageError) {
        // posix_fallocate returns the error number instead of setting errno.
        let result = posix_fallocate(fd, 0, off_t(size))
        guard result == 0 else { throw StorageError("posix_fallocate", path, code: result) }
    }

    func close() {}
}

extension FileSystem {
    /// Replaces the small file `path` in `directory` with `bytes` durably: a temporary file, synced,
    /// renamed over it, the directory synced. A crash leaves the old content or the new, never a mix.
    public func replaceDurably(_ path: String, with bytes: [UInt8], directory: String) throws(StorageError) {
        try createDurableDirectory(directory)
        let temporary = path + ".tmp"
        let file = try openForWriting(temporary, create: true)
        do throws(StorageError) {
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            try file.sync(dataOnly: false)
        } catch {
            file.close()
            throw error
        }
        file.close()
        try rename(temporary, to: path)
        try syncDirectory(directory)
    }
}
