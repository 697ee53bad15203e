import LearnStoreModel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An in-memory file system for the deterministic simulation: what reads see (the page cache) and
/// what survives a machine crash (synced bytes, and names made durable by a directory sync) are kept
/// apart, and faults come from the simulation's seeded generator, so one seed replays one run.
public final class SimulatedFileSystem: FileSystem, @unchecked Sendable {
    /// Chances of each fault per operation, in parts per million (0: never).
    public struct FaultRates: Sendable {
        public var writeError = 0
        public var shortWrite = 0
        public var syncError = 0
        public var allocateError = 0
        public var renameError = 0

        public init() {}
    }

    final class Node {
        var data: [UInt8] = []
        /// What a machine crash leaves: the bytes as of the last sync.
        var durable: [UInt8] = []
        init() {}
    }

    /// Syncs that take a while (a busy or failing disk): each file or directory sync moves the
    /// simulated clock on by up to `maximumMilliseconds`, with this chance in parts per million, so
    /// whatever reads the clock around a sync (the `everysec` timer, snapshot times) sees the delay.
    public struct SlowSyncs: Sendable {
        public var perMillion = 0
        public var maximumMilliseconds = 3_000
        public init() {}
    }

    private let lock = NSLockLike()
    private var names: [String: Node] = [:]
    /// The names a machine crash leaves (as of each directory's last sync).
    private var durableNames: [String: Node] = [:]
    private var directories: Set<String> = []
    /// The directories a machine crash leaves: a new directory's entry is durable once its parent is
    /// synced; a directory that is lost takes everything under it.
    private var durableDirectories: Set<String> = []
    private var random: SplitMix64
    public var rates = FaultRates()
    public var slowSyncs = SlowSyncs()
    /// The clock a slow sync advances (nil: syncs take no simulated time).
    public var clock: SimulatedClock?
    public private(set) var slowSyncsInjected = 0
    public private(set) var faultsInjected = 0
    public private(set) var lastFault: String?

    public init(random: SplitMix64) {
        self.random = random
    }

    private func inject(_ rate: Int, _ what: String) -> Bool {
        guard rate > 0, random.next(below: 1_000_000) < rate else { return false }
        faultsInjected += 1
        lastFault = what
        return true
    }

    /// The process died: nothing changes on disk (the page cache survives a killed process).
    public func processCrash() {}

    /// The machine died: every file keeps its synced bytes plus a prefix of what changed since (the
    /// kernel wrote part of it back, in order), every directory its synced names, and only directories
    /// whose own entry was synced in their parent survive, with what is under them.
    public func machineCrash() {
        lock.withLock {
            var seen = Set<ObjectIdentifier>()
            // In name order: each tear draws from the random stream, and a seed must replay in any process.
            let nodes = names.sorted { $0.key < $1.key }.map(\.value) + durableNames.sorted { $0.key < $1.key }.map(\.value)
            for node in nodes where seen.insert(ObjectIdentifier(node)).inserted {
                tear(node)
            }
            func reachable(_ path: String) -> Bool {
                var parent = Self.parent(of: path)
                while let current = parent {
                    guard durableDirectories.contains(current) else { return false }
                    parent = Self.parent(of: current)
                }
                return true
            }
            durableDirectories = durableDirectories.filter(reachable)
            directories = durableDirectories
            durableNames = durableNames.filter { reachable($0.key) }
            names = durableNames
        }
    }

    /// The directory holding `path`; nil for a top-level name (the root always exists).
    static func parent(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return nil }
        return String(path[..<slash])
    }

    private func tear(_ node: Node) {
        let length = max(node.data.count, node.durable.count)
        var firstChange = 0
        while firstChange < min(node.data.count, node.durable.count), node.data[firstChange] == node.durable[firstChange] { firstChange += 1 }
        guard firstChange < length else { return }
        let cut = firstChange + random.next(below: length - firstChange + 1)
        var survived = Array(node.data.prefix(cut))
        if node.durable.count > survived.count { survived.append(contentsOf: node.durable[survived.count...]) }
        node.data = survived
        node.durable = survived
    }

    /// Flips one bit of a file, in what reads see and in what survives a machine crash (a damaged
    /// disk block). The caller chooses where, from the simulation's generator.
    public func flipBit(_ path: String, offset: Int, bit: Int) {
        lock.withLock {
            guard let node = names[path], offset < node.data.count else { return }
            node.data[offset] ^= UInt8(1 << (bit & 7))
            if offset < node.durable.count { node.durable[offset] = node.data[offset] }
        }
    }

    /// Every file name, sorted (so a choice among them is the same on every run).
    public var paths: [String] { lock.withLock { names.keys.sorted() } }

    /// A sync of a busy disk: the simulated clock moves on.
    private func syncTakesTime() {
        guard let clock, slowSyncs.perMillion > 0, random.next(below: 1_000_000) < slowSyncs.perMillion else { return }
        slowSyncsInjected += 1
        clock.advance(milliseconds: Int64(1 + random.next(below: slowSyncs.maximumMilliseconds)))
    }

    func node(_ path: String) -> Node? { lock.withLock { names[path] } }

    // MARK: FileSystem

    public func openForWriting(_ path: String, create: Bool) throws(StorageError) -> any StorageFile {
        let node: Node? = lock.withLock {
            if let existing = names[path] { return existing }
            guard create else { return nil }
            let fresh = Node()
            names[path] = fresh
            return fresh
        }
        guard let node else { throw StorageError("open", path, code: ENOENT) }
        return SimulatedFile(path: path, node: node, owner: self)
    }

    public func openForReading(_ path: String) throws(StorageError) -> any StorageFile {
        guard let node = node(path) else { throw StorageError("open", path, code: ENOENT) }
        return SimulatedFile(path: path, node: node, owner: self)
    }

    public func readWholeFile(_ path: String) throws(StorageError) -> [UInt8] {
        guard let node = node(path) else { throw StorageError("open", path, code: ENOENT) }
        return lock.withLock { node.data }
    }

    public func list(_ directory: String) throws(StorageError) -> [String] {
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        return lock.withLock {
            var entries = Set<String>()
            for name in names.keys where name.hasPrefix(prefix) {
                entries.insert(String(name.dropFirst(prefix.count).split(separator: "/").first!))
            }
            for name in directories where name.hasPrefix(prefix) {
                entries.insert(String(name.dropFirst(prefix.count).split(separator: "/").first!))
            }
            return entries.sorted()
        }
    }

    public func createDirectory(_ path: String) throws(StorageError) {
        lock.withLock {
            var current = ""
            for part in path.split(separator: "/") {
                current += (path.hasPrefix("/") || !current.isEmpty ? "/" : "") + part
                directories.insert(current)
            }
        }
    }

    public func rename(_ from: String, to: String) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            if inject(rates.renameError, "rename \(to)") { throw StorageError("rename", to, code: EIO) }
            guard let node = names.removeValue(forKey: from) else { throw StorageError("rename", from, code: ENOENT) }
            names[to] = node
        }
    }

    public func remove(_ path: String) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            guard names.removeValue(forKey: path) != nil else { throw StorageError("unlink", path, code: ENOENT) }
        }
    }

    public func removeDirectory(_ path: String) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            let prefix = path + "/"
            guard !names.keys.contains(where: { $0.hasPrefix(prefix) }), !directories.contains(where: { $0.hasPrefix(prefix) }) else {
                throw StorageError("rmdir", path, code: ENOTEMPTY)
            }
            directories.remove(path)
        }
    }

    public func syncDirectory(_ path: String) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            syncTakesTime()
            if inject(rates.syncError, "fsync directory \(path)") { throw StorageError("fsync", path, code: EIO) }
            let prefix = path.hasSuffix("/") ? path : path + "/"
            func inDirectory(_ name: String) -> Bool { name.hasPrefix(prefix) && !name.dropFirst(prefix.count).contains("/") }
            durableNames = durableNames.filter { !inDirectory($0.key) }
            for (name, node) in names where inDirectory(name) { durableNames[name] = node }
            durableDirectories = durableDirectories.filter { !inDirectory($0) }.union(directories.filter(inDirectory))
        }
    }

    public func exists(_ path: String) -> Bool { lock.withLock { path == "/" || names[path] != nil || directories.contains(path) } }

    // MARK: file operations

    func write(_ node: Node, path: String, bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            if inject(rates.writeError, "pwrite \(path)") { throw StorageError("pwrite", path, code: random.next(below: 2) == 0 ? ENOSPC : EIO) }
            var count = bytes.count
            var short = false
            if count > 1, inject(rates.shortWrite, "short pwrite \(path)") {
                count = random.next(below: count)
                short = true
            }
            if node.data.count < offset + count { node.data.append(contentsOf: [UInt8](repeating: 0, count: offset + count - node.data.count)) }
            if count > 0 { node.data.withUnsafeMutableBytes { target in
                target.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: count)
            } }
            if short { throw StorageError("pwrite", path, code: ENOSPC) }
        }
    }

    func sync(_ node: Node, path: String) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            syncTakesTime()
            if inject(rates.syncError, "fdatasync \(path)") { throw StorageError("fdatasync", path, code: EIO) }
            node.durable = node.data
        }
    }

    func allocate(_ node: Node, path: String, size: Int) throws(StorageError) {
        try lock.withLock { () throws(StorageError) in
            if inject(rates.allocateError, "fallocate \(path)") { throw StorageError("posix_fallocate", path, code: ENOSPC) }
            if node.data.count < size { node.data.append(contentsOf: [UInt8](repeating: 0, count: size - node.data.count)) }
        }
    }

    func truncate(_ node: Node, size: Int) {
        lock.withLock {
            if node.data.count > size { node.data.removeLast(node.data.count - size) } else {
                node.data.append(contentsOf: [UInt8](repeating: 0, count: size - node.data.count))
            }
        }
    }

    func read(_ node: Node, count: Int, at offset: Int) -> [UInt8] {
        lock.withLock {
            guard offset < node.data.count else { return [] }
            return Array(node.data[offset..<min(node.data.count, offset + count)])
        }
    }

    func size(_ node: Node) -> Int { lock.withLock { node.data.count } }
}

final class SimulatedFile: StorageFile, @unchecked Sendable {
    let path: String
    let node: SimulatedFileSystem.Node
    let owner: SimulatedFileSystem

    init(path: String, node: SimulatedFileSystem.Node, owner: SimulatedFileSystem) {
        self.path = path
        self.node = node
        self.owner = owner
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        try owner.write(node, path: path, bytes: bytes, at: offset)
    }
    func read(count: Int, at offset: Int) throws(StorageError) -> [UInt8] { owner.read(node, count: count, at: offset) }
    func sync(dataOnly: Bool) throws(StorageError) { try owner.sync(node, path: path) }
    func size() throws(StorageError) -> Int { owner.size(node) }
    func truncate(to size: Int) throws(StorageError) { owner.truncate(node, size: size) }
    func allocate(size: Int) throws(StorageError) { try owner.allocate(node, path: path, size: size) }
    func close() {}
}

/// A recursive lock (the file system calls back into itself only through `inject`, under the lock).
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() {
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(&mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
