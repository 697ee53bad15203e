import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// One snapshot file of a data directory, as `learnstore snapshot list` shows it.
public struct SnapshotListing: Sendable {
    public var tenantID: String
    /// The sequence in the file name.
    public var sequence: UInt64
    public var path: String
    public var fileBytes: Int
    /// Nil when the header cannot be read (`error` says why).
    public var header: SnapshotHeader?
    public var error: String?
}

/// What `learnstore snapshot inspect` reports: the header and the counts of the decoded contents.
public struct SnapshotInspection: Sendable {
    public var path: String
    public var header: SnapshotHeader
    public var fileBytes: Int
    public var blocks: Int
    public var uncompressedBytes: Int
    public var liveRecords: Int
    public var deletedRecords: Int
    public var strings: Int
    public var uuids: Int
    public var persons: Int
    public var idempotencyKeys: Int
    /// Live outcome entities by kind.
    public var outcomeEntities: [OutcomeEntityKind: Int]
    public var outcomeTombstones: Int
}

/// Reading the snapshots of a data directory for the operator tools: listing, verification and
/// inspection. It only reads, so it may run beside a live server.
public enum SnapshotCatalog {
    /// Every snapshot, by tenant then sequence (one tenant's when `tenant` is given).
    public static func list(_ directory: DataDirectory, tenant: String? = nil, fileSystem fs: any FileSystem = PosixFileSystem()) throws -> [SnapshotListing] {
        var tenants = try directory.tenants(fs).sorted()
        if let tenant { tenants = tenants.filter { $0 == tenant } }
        var listings: [SnapshotListing] = []
        for tenantID in tenants {
            for sequence in try directory.snapshots(of: tenantID, fs) {
                let path = directory.snapshotPath(tenantID, sequence: sequence)
                var listing = SnapshotListing(tenantID: tenantID, sequence: sequence, path: path, fileBytes: fileSize(path, fs))
                do {
                    listing.header = try SnapshotFile.readHeader(path, fileSystem: fs)
                } catch {
                    listing.error = "\(error)"
                }
                listings.append(listing)
            }
        }
        return listings
    }

    /// Checks one snapshot completely: the header checksum, every block's CRC-32C and zstd checksum,
    /// the trailer, the decoded contents against the header's counts, and that the file sits where
    /// its header says (tenant directory and sequence in the name). Returns the header, or throws
    /// ``SnapshotFile/Damage`` naming the byte offset.
    @discardableResult
    public static func verify(_ path: String, fileSystem fs: any FileSystem = PosixFileSystem()) throws -> SnapshotHeader {
        let loaded = try SnapshotFile.read(path, fileSystem: fs)
        try checkPlacement(loaded.header, path: path)
        return loaded.header
    }

    /// Decodes a snapshot (verifying it) and counts what it holds.
    public static func inspect(_ path: String, fileSystem fs: any FileSystem = PosixFileSystem()) throws -> SnapshotInspection {
        let bytes = try fs.readWholeFile(path)
        let (header, stream) = try bytes.withUnsafeBytes { raw in try SnapshotFile.decompress(raw, path: path) }
        let contents: SnapshotStream.Contents
        do {
            contents = try stream.withUnsafeBytes { raw throws(DecodeError) in
                try SnapshotStream.decode(raw, tenantID: header.tenantID, expectedRecords: header.records)
            }
        } catch {
            throw SnapshotFile.Damage(path: path, offset: -1, reason: "content: \(error)")
        }
        // The trailer (verified above) holds the block count: u32 marker, u64 blocks, ...
        let blocks = bytes.withUnsafeBytes { raw in Int(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 28, as: UInt64.self))) }
        let tables = contents.outcomes
        return SnapshotInspection(
            path: path, header: header, fileBytes: bytes.count, blocks: blocks, uncompressedBytes: stream.count,
            liveRecords: contents.store.liveCount, deletedRecords: contents.store.deletedCount, strings: contents.store.strings.count,
            uuids: contents.store.uuids.count, persons: contents.store.persons.count, idempotencyKeys: contents.idempotency.count,
            outcomeEntities: [.outcome: tables.outcomes.count, .group: tables.groups.count, .link: tables.links.count,
                              .result: tables.results.count, .proficiency: tables.proficiencies.count],
            outcomeTombstones: tables.tombstones.count)
    }

    /// A snapshot copied to the wrong tenant directory or renamed would be loaded as another
    /// tenant's or at the wrong sequence.
    static func checkPlacement(_ header: SnapshotHeader, path: String) throws {
        let parts = path.split(separator: "/")
        guard parts.count >= 2, let sequence = SnapshotHeader.sequence(fromFileName: String(parts[parts.count - 1])) else { return }
        if sequence != header.sequence {
            throw SnapshotFile.Damage(path: path, offset: 0, reason: "the file name says sequence \(sequence), the header \(header.sequence)")
        }
        if parts.count >= 3, parts[parts.count - 3] == "tenants", String(parts[parts.count - 2]) != header.tenantID {
            throw SnapshotFile.Damage(path: path, offset: 0, reason: "the file is in tenant directory \(parts[parts.count - 2]) but holds tenant \(header.tenantID)")
        }
    }

    static func fileSize(_ path: String, _ fs: any FileSystem) -> Int {
        guard let file = try? fs.openForReading(path) else { return 0 }
        defer { file.close() }
        return (try? file.size()) ?? 0
    }
}
