import LearnStorePersistence
import Synchronization

/// A file system held in a dictionary, so a harness can hand persistence code a data directory of
/// fuzzed files without touching the disk. Directories exist implicitly wherever a file is below them.
public final class MemoryFileSystem: FileSystem {
    let files: Mutex<[String: [UInt8]]>

    public init(_ files: [String: [UInt8]] = [:]) { self.files = Mutex(files) }

    public func contents(_ path: String) -> [UInt8]? { files.withLock { $0[path] } }

    public func openForWriting(_ path: String, create: Bool) throws(StorageError) -> any StorageFile {
        let exists = files.withLock { $0[path] != nil }
        if !exists {
            guard create else { throw StorageError("open", path, code: 2) }
            files.withLock { $0[path] = [] }
        }
        return MemoryFile(path: path, system: self)
    }

    public func openForReading(_ path: String) throws(StorageError) -> any StorageFile {
        guard files.withLock({ $0[path] != nil }) else { throw StorageError("open", path, code: 2) }
        return MemoryFile(path: path, system: self)
    }

    public func readWholeFile(_ path: String) throws(StorageError) -> [UInt8] {
        guard let bytes = contents(path) else { throw StorageError("open", path, code: 2) }
        return bytes
    }

    public func list(_ directory: String) throws(StorageError) -> [String] {
        let prefix = directory + "/"
        let names = files.withLock { files in
            Set(files.keys.filter { $0.hasPrefix(prefix) }.compactMap { $0.dropFirst(prefix.count).split(separator: "/").first.map(String.init) })
        }
        return names.sorted()
    }

    public func createDirectory(_ path: String) throws(StorageError) {}

    public func rename(_ from: String, to: String) throws(StorageError) {
        try files.withLock { (files: inout [String: [UInt8]]) throws(StorageError) -> Void in
            guard let bytes = files.removeValue(forKey: from) else { throw StorageError("rename", from, code: 2) }
            files[to] = bytes
        }
    }

    public func remove(_ path: String) throws(StorageError) { files.withLock { _ = $0.removeValue(forKey: path) } }
    public func syncDirectory(_ path: String) throws(StorageError) {}

    public func exists(_ path: String) -> Bool {
        let prefix = path + "/"
        return files.withLock { files in files[path] != nil || files.keys.contains { $0.hasPrefix(prefix) } }
    }
}

final class MemoryFile: StorageFile {
    let path: String
    let system: MemoryFileSystem

    init(path: String, system: MemoryFileSystem) {
        self.path = path
        self.system = system
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        system.files.withLock { files in
            var file = files[path] ?? []
            if file.count < offset + bytes.count { file += [UInt8](repeating: 0, count: offset + bytes.count - file.count) }
            file.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            files[path] = file
        }
    }

    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8] {
        let file = system.contents(path) ?? []
        guard offset < file.count else { return [] }
        return Array(file[offset..<min(file.count, offset + count)])
    }

    func sync(dataOnly: Bool) throws(StorageError) {}
    func size() throws(StorageError) -> Int { system.contents(path)?.count ?? 0 }

    func truncate(to size: Int) throws(StorageError) {
        system.files.withLock { files in
            var file = files[path] ?? []
            if file.count > size { file.removeLast(file.count - size) } else { file += [UInt8](repeating: 0, count: size - file.count) }
            files[path] = file
        }
    }

    func allocate(size: Int) throws(StorageError) {
        if (try self.size()) < size { try truncate(to: size) }
    }

    func close() {}
}
