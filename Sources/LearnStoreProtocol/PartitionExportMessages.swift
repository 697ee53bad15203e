import LearnStoreModel

/// PARTITION_EXPORT `0xB9` (docs/PROTOCOL.md, E.8): the primary of the group a partition moves to
/// asks the primary of the group it leaves for its tenants, one piece per request.
public struct PartitionExportRequest: Sendable, Hashable {
    public enum Mode: UInt8, Sendable {
        /// The piece of `tenant` that starts at the cursor.
        case piece = 0
        /// The first piece of the first tenant of the partition after `tenant` ("": the first tenant).
        case nextTenant = 1
        /// As `piece`, for the changes of a fenced move.
        case changesPiece = 2
        /// The first piece of what changed in the first tenant after `tenant` since the copy
        /// `tracking` began, once the move is fenced (or of the whole tenant, when the source cannot
        /// tell its changes).
        case nextTenantChanges = 3
        /// As `piece`, within a round (`nextTenantRound`).
        case roundPiece = 4
        /// The first piece of a round of the first tenant after `tenant` whose changes the copy
        /// `tracking` follows: the records its writes touched since its first copy or last round, as
        /// they are now, while the move is not fenced yet and the tenant still takes writes.
        case nextTenantRound = 5

        public var isChanges: Bool { self == .changesPiece || self == .nextTenantChanges }
        public var isRound: Bool { self == .roundPiece || self == .nextTenantRound }
        public var startsTenant: Bool { self == .nextTenant || self == .nextTenantChanges || self == .nextTenantRound }
    }

    /// The epoch the source group's primary holds, as the asking node read it from etcd.
    public var sourceEpoch: UInt64
    /// The move (the map version that started it).
    public var moveID: UInt64
    public var partition: UInt32
    public var mode: Mode
    public var tenant: String
    public var section: UInt8
    public var offset: UInt64
    /// Names the asker's copy (0: none). A tenant's first piece with it starts tracking what the
    /// tenant's writes touch from then on; the changes modes send what that tracking saw.
    public var tracking: UInt64

    public init(sourceEpoch: UInt64, moveID: UInt64, partition: UInt32, mode: Mode, tenant: String, section: UInt8 = 0, offset: UInt64 = 0,
                tracking: UInt64 = 0) {
        self.sourceEpoch = sourceEpoch
        self.moveID = moveID
        self.partition = partition
        self.mode = mode
        self.tenant = tenant
        self.section = section
        self.offset = offset
        self.tracking = tracking
    }
}

/// One piece of one tenant: WAL mutations (docs/STORAGE-FORMAT.md, "Mutations") that rebuild part of
/// it, or the end of the partition.
public struct PartitionExportPiece: Sendable, Hashable {
    /// No tenant is left; the other fields are empty.
    public var end: Bool
    public var tenant: String
    /// The tenant's sequence on the source.
    public var sequence: UInt64
    /// Where the tenant's next piece starts; nil after its last.
    public var next: (section: UInt8, offset: UInt64)?
    /// The piece holds the tenant's changes since the asker's copy began (or its last round), to apply
    /// on top of it (set only in answers to the changes and round modes); else it is part of the whole
    /// tenant.
    public var changes: Bool
    public var mutationCount: Int
    /// `mutationCount` mutations, encoded one after the other.
    public var mutations: [UInt8]

    public init(end: Bool, tenant: String = "", sequence: UInt64 = 0, next: (section: UInt8, offset: UInt64)? = nil, changes: Bool = false,
                mutationCount: Int = 0, mutations: [UInt8] = []) {
        self.end = end
        self.tenant = tenant
        self.sequence = sequence
        self.next = next
        self.changes = changes
        self.mutationCount = mutationCount
        self.mutations = mutations
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.end == b.end && a.tenant == b.tenant && a.sequence == b.sequence && a.next?.section == b.next?.section
            && a.next?.offset == b.next?.offset && a.changes == b.changes && a.mutationCount == b.mutationCount && a.mutations == b.mutations
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(tenant)
        hasher.combine(sequence)
        hasher.combine(mutations)
    }
}

extension ReplicationMessages {
    /// A tenant id is at most this long (as tokens allow).
    static let maximumTenantBytes = 256

    public static func encode(_ request: PartitionExportRequest, into writer: inout ByteWriter) {
        writer.writeU64(request.sourceEpoch)
        writer.writeU64(request.moveID)
        writer.writeU32(request.partition)
        writer.writeU8(request.mode.rawValue)
        writer.writeString(request.tenant)
        writer.writeU8(request.section)
        writer.writeU64(request.offset)
        writer.writeU64(request.tracking)
    }

    public static func decodePartitionExport(from reader: inout ByteReader) throws(DecodeError) -> PartitionExportRequest {
        let epoch = try reader.readCounter()
        let moveID = try reader.readCounter()
        let partitionOffset = reader.offset
        let partition = try reader.readU32()
        guard partition < PartitionMap.maximumPartitions else { throw DecodeError(offset: partitionOffset, reason: "partition \(partition) out of range") }
        let modeOffset = reader.offset
        let rawMode = try reader.readU8()
        guard let mode = PartitionExportRequest.Mode(rawValue: rawMode) else { throw DecodeError(offset: modeOffset, reason: "unknown export mode \(rawMode)") }
        let tenant = try reader.readString(limit: maximumTenantBytes)
        let section = try reader.readU8()
        let offset = try reader.readU64()
        let tracking = try reader.readU64()
        try reader.expectEnd()
        return PartitionExportRequest(sourceEpoch: epoch, moveID: moveID, partition: partition, mode: mode, tenant: tenant, section: section, offset: offset,
                                      tracking: tracking)
    }

    public static func encode(_ piece: PartitionExportPiece, into writer: inout ByteWriter) {
        writer.writeU8((piece.end ? 1 : 0) | (piece.next != nil ? 2 : 0) | (piece.changes ? 4 : 0))
        writer.writeString(piece.tenant)
        writer.writeU64(piece.sequence)
        writer.writeU8(piece.next?.section ?? 0)
        writer.writeU64(piece.next?.offset ?? 0)
        writer.writeVarint(UInt64(piece.mutationCount))
        writer.writeBytes(piece.mutations)
    }

    /// The mutations stay bytes: the caller decodes them with the WAL's codec, each checked.
    public static func decodePartitionExportPiece(from reader: inout ByteReader) throws(DecodeError) -> PartitionExportPiece {
        let flagsOffset = reader.offset
        let flags = try reader.readU8()
        guard flags & ~7 == 0 else { throw DecodeError(offset: flagsOffset, reason: "unknown export flags \(flags)") }
        let tenant = try reader.readString(limit: maximumTenantBytes)
        let sequence = try reader.readCounter()
        let section = try reader.readU8()
        let offset = try reader.readU64()
        let count = try reader.readCount(limit: 1 << 24, minimumElementBytes: 1)
        let mutations = Array(try reader.readBytes(reader.remaining))
        return PartitionExportPiece(end: flags & 1 != 0, tenant: tenant, sequence: sequence, next: flags & 2 != 0 ? (section, offset) : nil,
                                    changes: flags & 4 != 0, mutationCount: count, mutations: mutations)
    }
}
