import LearnStoreModel

/// The messages of the replication port (docs/PROTOCOL.md, appendix E): nodes authenticate each other
/// with a shared cluster secret, then a replica follows its primary's write-ahead log.
public enum ReplicationOpcode {
    public static let nodeHello: UInt8 = 0xB0
    public static let nodeAuth: UInt8 = 0xB1
    public static let replicate: UInt8 = 0xB2
    public static let records: UInt8 = 0xB3
    public static let ack: UInt8 = 0xB4
    public static let promote: UInt8 = 0xB5
    public static let status: UInt8 = 0xB6
    public static let promise: UInt8 = 0xB7
    public static let catchUp: UInt8 = 0xB8
    /// A piece of a partition's tenants, for a partition move (docs/PROTOCOL.md, E.8).
    public static let partitionExport: UInt8 = 0xB9
    /// The control plane asks a primary to hand its place to an in-sync replica (docs/PROTOCOL.md, E.9).
    public static let handover: UInt8 = 0xBA
}

public struct NodeHello: Sendable, Hashable {
    /// 2: PROMISE and PROMOTE name their promotion.
    public static let currentVersion: UInt16 = 2
    public static let nonceBytes = 16
    public var version: UInt16
    public var nodeID: String
    public var nonce: [UInt8]

    public init(version: UInt16 = NodeHello.currentVersion, nodeID: String, nonce: [UInt8]) {
        self.version = version
        self.nodeID = nodeID
        self.nonce = nonce
    }
}

public struct NodeHelloReply: Sendable, Hashable {
    public var nodeID: String
    public var nonce: [UInt8]

    public init(nodeID: String, nonce: [UInt8]) {
        self.nodeID = nodeID
        self.nonce = nonce
    }
}

/// The answer to NODE_AUTH: the server's own proof, and where its log stands.
public struct NodeAuthReply: Sendable, Hashable {
    public var proof: [UInt8]
    public var role: NodeRole
    public var epoch: UInt64
    public var lastLSN: UInt64

    public init(proof: [UInt8], role: NodeRole, epoch: UInt64, lastLSN: UInt64) {
        self.proof = proof
        self.role = role
        self.epoch = epoch
        self.lastLSN = lastLSN
    }
}

/// A replica asks to follow: its epoch history (oldest first; the last is its current epoch) and the
/// last LSN its log holds.
public struct ReplicateRequest: Sendable, Hashable {
    public var epochs: [EpochStart]
    /// The highest epoch the replica has promised a promotion (PROMISE).
    public var promised: UInt64
    public var lastLSN: UInt64

    public init(epochs: [EpochStart], promised: UInt64, lastLSN: UInt64) {
        self.epochs = epochs
        self.promised = promised
        self.lastLSN = lastLSN
    }

    public var epoch: UInt64 { epochs.last?.epoch ?? 0 }
}

/// Where the stream starts. With `truncate`, the replica holds records the primary's history does
/// not (written by an old primary after the epoch it knows ended): it must drop every record after
/// `startAfter` before it applies anything.
public struct ReplicateAccepted: Sendable, Hashable {
    public var epoch: UInt64
    public var startAfter: UInt64
    public var truncate: Bool
    /// The epochs after the replica's, each with its first LSN (the replica adopts this history).
    public var epochs: [EpochStart]

    public init(epoch: UInt64, startAfter: UInt64, truncate: Bool, epochs: [EpochStart]) {
        self.epoch = epoch
        self.startAfter = startAfter
        self.truncate = truncate
        self.epochs = epochs
    }
}

public struct EpochStart: Sendable, Hashable {
    public var epoch: UInt64
    /// The first LSN written in this epoch.
    public var firstLSN: UInt64

    public init(epoch: UInt64, firstLSN: UInt64) {
        self.epoch = epoch
        self.firstLSN = firstLSN
    }
}

/// WAL records in the storage format, in LSN order (or none: a heartbeat).
public struct ReplicationRecords: Sendable, Hashable {
    public var epoch: UInt64
    /// Every write up to here may be acknowledged to clients (the primary's commit mark).
    public var commitLSN: UInt64
    /// Whether the replica is in the primary's in-sync set.
    public var inSync: Bool
    /// The stream has reached this LSN: the primary has no other record up to it.
    public var throughLSN: UInt64
    /// The records, byte for byte as the primary's log holds them.
    public var records: [UInt8]

    public init(epoch: UInt64, commitLSN: UInt64, inSync: Bool, throughLSN: UInt64, records: [UInt8]) {
        self.epoch = epoch
        self.commitLSN = commitLSN
        self.inSync = inSync
        self.throughLSN = throughLSN
        self.records = records
    }
}

public struct ReplicationAck: Sendable, Hashable {
    public var epoch: UInt64
    /// Every record up to here is durable in the replica's log.
    public var durableLSN: UInt64
    /// Every record up to here is applied to the replica's tenants.
    public var appliedLSN: UInt64

    public init(epoch: UInt64, durableLSN: UInt64, appliedLSN: UInt64) {
        self.epoch = epoch
        self.durableLSN = durableLSN
        self.appliedLSN = appliedLSN
    }
}

/// PROMISE and PROMOTE: the epoch a promotion picked (for PROMOTE 0 asks for the node's current epoch
/// + 1 without promises) and the promotion's id, drawn at random for each promotion. A node promises an
/// epoch to one promotion only, and is promoted to a promised epoch only by it.
public struct PromoteRequest: Sendable, Hashable {
    public var epoch: UInt64
    public var promotion: UUID16

    public init(epoch: UInt64, promotion: UUID16) {
        self.epoch = epoch
        self.promotion = promotion
    }
}

/// The answer to PROMISE: the highest epoch the node has promised, and whether that promise is the
/// asking promotion's.
public struct PromiseReply: Sendable, Hashable {
    public var promised: UInt64
    public var granted: Bool

    public init(promised: UInt64, granted: Bool) {
        self.promised = promised
        self.granted = granted
    }
}

/// The answer to PROMOTE: the epoch the node now leads, from which LSN.
public struct PromoteReply: Sendable, Hashable {
    public var epoch: UInt64
    public var firstLSN: UInt64

    public init(epoch: UInt64, firstLSN: UInt64) {
        self.epoch = epoch
        self.firstLSN = firstLSN
    }
}

public enum ReplicationMessages {
    static let maximumNodeIDBytes = 64
    public static let proofBytes = 32
    public static let maximumEpochs = 4096

    public static func encode(_ hello: NodeHello, into writer: inout ByteWriter) {
        writer.writeU16(hello.version)
        writer.writeString(hello.nodeID)
        writer.writeBytes(hello.nonce)
    }

    public static func decodeHello(from reader: inout ByteReader) throws(DecodeError) -> NodeHello {
        let version = try reader.readU16()
        let node = try reader.readString(limit: maximumNodeIDBytes)
        let nonce = [UInt8](try reader.readBytes(NodeHello.nonceBytes))
        try reader.expectEnd()
        return NodeHello(version: version, nodeID: node, nonce: nonce)
    }

    public static func encode(_ reply: NodeHelloReply, into writer: inout ByteWriter) {
        writer.writeString(reply.nodeID)
        writer.writeBytes(reply.nonce)
    }

    public static func decodeHelloReply(from reader: inout ByteReader) throws(DecodeError) -> NodeHelloReply {
        let node = try reader.readString(limit: maximumNodeIDBytes)
        let nonce = [UInt8](try reader.readBytes(NodeHello.nonceBytes))
        try reader.expectEnd()
        return NodeHelloReply(nodeID: node, nonce: nonce)
    }

    public static func encodeAuth(proof: [UInt8], into writer: inout ByteWriter) {
        writer.writeBytes(proof)
    }

    public static func decodeAuth(from reader: inout ByteReader) throws(DecodeError) -> [UInt8] {
        let proof = [UInt8](try reader.readBytes(proofBytes))
        try reader.expectEnd()
        return proof
    }

    public static func encode(_ reply: NodeAuthReply, into writer: inout ByteWriter) {
        writer.writeBytes(reply.proof)
        writer.writeU8(reply.role.rawValue)
        writer.writeU64(reply.epoch)
        writer.writeU64(reply.lastLSN)
    }

    public static func decodeAuthReply(from reader: inout ByteReader) throws(DecodeError) -> NodeAuthReply {
        let proof = [UInt8](try reader.readBytes(proofBytes))
        let rawRole = try reader.readU8()
        guard let role = NodeRole(rawValue: rawRole) else { throw reader.error("unknown node role \(rawRole)") }
        let epoch = try reader.readCounter()
        let last = try reader.readCounter()
        try reader.expectEnd()
        return NodeAuthReply(proof: proof, role: role, epoch: epoch, lastLSN: last)
    }

    public static func encode(_ request: ReplicateRequest, into writer: inout ByteWriter) {
        writer.writeU64(request.lastLSN)
        writer.writeU64(request.promised)
        encode(request.epochs, into: &writer)
    }

    public static func decodeReplicate(from reader: inout ByteReader) throws(DecodeError) -> ReplicateRequest {
        let last = try reader.readCounter()
        let promised = try reader.readCounter()
        let epochs = try decodeEpochs(from: &reader)
        guard !epochs.isEmpty else { throw reader.error("an epoch history holds at least one epoch") }
        try reader.expectEnd()
        return ReplicateRequest(epochs: epochs, promised: promised, lastLSN: last)
    }

    static func encode(_ epochs: [EpochStart], into writer: inout ByteWriter) {
        writer.writeU32(UInt32(epochs.count))
        for start in epochs {
            writer.writeU64(start.epoch)
            writer.writeU64(start.firstLSN)
        }
    }

    static func decodeEpochs(from reader: inout ByteReader) throws(DecodeError) -> [EpochStart] {
        let count = Int(try reader.readU32())
        guard count <= maximumEpochs, count * 16 <= reader.remaining else { throw reader.error("epoch count \(count) exceeds the payload") }
        var epochs: [EpochStart] = []
        epochs.reserveCapacity(count)
        for _ in 0..<count { epochs.append(EpochStart(epoch: try reader.readCounter(), firstLSN: try reader.readCounter())) }
        return epochs
    }

    public static func encode(_ accepted: ReplicateAccepted, into writer: inout ByteWriter) {
        writer.writeU64(accepted.epoch)
        writer.writeU64(accepted.startAfter)
        writer.writeU8(accepted.truncate ? 1 : 0)
        encode(accepted.epochs, into: &writer)
    }

    public static func decodeAccepted(from reader: inout ByteReader) throws(DecodeError) -> ReplicateAccepted {
        let epoch = try reader.readCounter()
        let start = try reader.readCounter()
        let truncate = try reader.readU8()
        guard truncate <= 1 else { throw reader.error("truncate must be 0 or 1") }
        let epochs = try decodeEpochs(from: &reader)
        try reader.expectEnd()
        return ReplicateAccepted(epoch: epoch, startAfter: start, truncate: truncate == 1, epochs: epochs)
    }

    public static func encode(_ records: ReplicationRecords, into writer: inout ByteWriter) {
        writer.writeU64(records.epoch)
        writer.writeU64(records.commitLSN)
        writer.writeU8(records.inSync ? 1 : 0)
        writer.writeU64(records.throughLSN)
        writer.writeBytes(records.records)
    }

    /// Decodes the frame's fields; the records stay raw bytes, each to be checked as the WAL checks its
    /// own (length, checksum, ascending LSN) before anything uses it.
    public static func decodeRecords(from reader: inout ByteReader) throws(DecodeError) -> ReplicationRecords {
        let epoch = try reader.readCounter()
        let commit = try reader.readCounter()
        let flags = try reader.readU8()
        guard flags <= 1 else { throw reader.error("in_sync must be 0 or 1") }
        let through = try reader.readCounter()
        let records = [UInt8](try reader.readBytes(reader.remaining))
        return ReplicationRecords(epoch: epoch, commitLSN: commit, inSync: flags == 1, throughLSN: through, records: records)
    }

    public static func encode(_ ack: ReplicationAck, into writer: inout ByteWriter) {
        writer.writeU64(ack.epoch)
        writer.writeU64(ack.durableLSN)
        writer.writeU64(ack.appliedLSN)
    }

    public static func decodeAck(from reader: inout ByteReader) throws(DecodeError) -> ReplicationAck {
        let ack = ReplicationAck(epoch: try reader.readCounter(), durableLSN: try reader.readCounter(), appliedLSN: try reader.readCounter())
        try reader.expectEnd()
        return ack
    }

    public static func encode(_ request: PromoteRequest, into writer: inout ByteWriter) {
        writer.writeU64(request.epoch)
        writer.writeUUID(request.promotion)
    }

    public static func decodePromote(from reader: inout ByteReader) throws(DecodeError) -> PromoteRequest {
        let request = PromoteRequest(epoch: try reader.readCounter(), promotion: try reader.readUUID())
        try reader.expectEnd()
        return request
    }

    public static func encode(_ reply: PromiseReply, into writer: inout ByteWriter) {
        writer.writeU64(reply.promised)
        writer.writeU8(reply.granted ? 1 : 0)
    }

    public static func decodePromiseReply(from reader: inout ByteReader) throws(DecodeError) -> PromiseReply {
        let promised = try reader.readCounter()
        let granted = try reader.readU8()
        guard granted <= 1 else { throw reader.error("granted must be 0 or 1") }
        try reader.expectEnd()
        return PromiseReply(promised: promised, granted: granted == 1)
    }

    public static func encode(_ reply: PromoteReply, into writer: inout ByteWriter) {
        writer.writeU64(reply.epoch)
        writer.writeU64(reply.firstLSN)
    }

    public static func decodePromoteReply(from reader: inout ByteReader) throws(DecodeError) -> PromoteReply {
        let reply = PromoteReply(epoch: try reader.readCounter(), firstLSN: try reader.readCounter())
        try reader.expectEnd()
        return reply
    }
}
