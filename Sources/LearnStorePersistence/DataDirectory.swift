import LearnStoreModel
#if canImport(Glibc)
import Glibc
#endif

/// The layout of a data directory (docs/STORAGE-FORMAT.md, "Files"):
/// `wal/wal-<first LSN>.log`, `tenants/<tenant>/snapshot-<sequence>.lss`, and a `LOCK` file that
/// keeps two servers (or a server and an offline tool) from using it at once.
public struct DataDirectory: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path }

    public var walDirectory: String { path + "/wal" }
    public var tenantsDirectory: String { path + "/tenants" }
    public func tenantDirectory(_ tenantID: String) -> String { tenantsDirectory + "/" + tenantID }

    /// WAL segment first LSNs, ascending.
    public func segments(_ fs: any FileSystem) throws(StorageError) -> [UInt64] {
        guard fs.exists(walDirectory) else { return [] }
        return try fs.list(walDirectory).compactMap(WALSegmentHeader.firstLSN(fromFileName:)).sorted()
    }

    public func segmentPath(_ firstLSN: UInt64) -> String { walDirectory + "/" + WALSegmentHeader.fileName(firstLSN: firstLSN) }

    public func tenants(_ fs: any FileSystem) throws(StorageError) -> [String] {
        guard fs.exists(tenantsDirectory) else { return [] }
        return try fs.list(tenantsDirectory).filter(CallerIdentity.isValidTenantID)
    }

    /// Snapshot sequences of a tenant, ascending.
    public func snapshots(of tenantID: String, _ fs: any FileSystem) throws(StorageError) -> [UInt64] {
        let directory = tenantDirectory(tenantID)
        guard fs.exists(directory) else { return [] }
        return try fs.list(directory).compactMap(SnapshotHeader.sequence(fromFileName:)).sorted()
    }

    public func snapshotPath(_ tenantID: String, sequence: UInt64) -> String {
        tenantDirectory(tenantID) + "/" + SnapshotHeader.fileName(sequence: sequence)
    }

    /// Takes an exclusive lock on the directory (flock on `LOCK`); held until ``unlock(_:)`` or the
    /// process exits.
    public func lock() throws -> Int32 {
        try PosixFileSystem().createDurableDirectory(path)
        let fd = open(path + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError("open", path + "/LOCK", code: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw LearnStoreError(.storageUnavailable, "data directory \(path) is in use by another LearnStore process")
        }
        return fd
    }

    /// Releases a lock taken by ``lock()``.
    public static func unlock(_ descriptor: Int32) {
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
