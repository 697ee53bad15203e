import LearnStoreModel

/// `wal/removed-segments`: for each tenant that had records in WAL segments retention removed, the
/// newest LSN it had there. Retention removes a segment once every tenant in it has a kept snapshot
/// covering its records there, so a tenant that wrote nothing since its snapshot while other tenants
/// filled later segments legitimately has a snapshot far below the oldest segment left. Recovery
/// tells that apart from lost records with this file: a tenant's snapshot must reach the LSN named
/// here (docs/STORAGE-FORMAT.md).
///
/// Text, one line per tenant after a header line: `<tenant_id> <lsn>` (tenant ids contain no space).
public enum RemovedSegmentsFile {
    public static let name = "removed-segments"
    static let header = "learnstore-removed-segments 1"

    public static func encode(_ newest: [String: UInt64]) -> [UInt8] {
        var text = header + "\n"
        for (tenant, lsn) in newest.sorted(by: { $0.key < $1.key }) { text += "\(tenant) \(lsn)\n" }
        return Array(text.utf8)
    }

    public struct Damaged: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func decode(_ bytes: [UInt8]) throws(Damaged) -> [String: UInt64] {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(header), lines.last == "" else {
            throw Damaged(description: "\(name) does not start with '\(header)' or is cut short")
        }
        var newest: [String: UInt64] = [:]
        for (index, line) in lines.dropFirst().dropLast().enumerated() {
            let parts = line.split(separator: " ")
            guard parts.count == 2, CallerIdentity.isValidTenantID(String(parts[0])), let lsn = UInt64(parts[1]), lsn <= UInt64(Int64.max) else {
                throw Damaged(description: "\(name) line \(index + 2) is not '<tenant> <lsn>'")
            }
            newest[String(parts[0])] = max(newest[String(parts[0])] ?? 0, lsn)
        }
        return newest
    }

    /// The file's content in `walDirectory`, empty when there is none.
    public static func read(walDirectory: String, _ fs: any FileSystem) throws -> [String: UInt64] {
        let path = walDirectory + "/" + name
        guard fs.exists(path) else { return [:] }
        return try decode(try fs.readWholeFile(path))
    }

    /// Replaces the file with `newest`, durably (a temporary file, synced, renamed, the directory synced).
    public static func write(_ newest: [String: UInt64], walDirectory: String, _ fs: any FileSystem) throws(StorageError) {
        try fs.replaceDurably(walDirectory + "/" + name, with: encode(newest), directory: walDirectory)
    }
}
