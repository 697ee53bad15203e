import LearnStoreModel

/// HANDOVER (docs/PROTOCOL.md, E.9): the control plane asks the primary of `epoch` to hand its place to
/// the in-sync replica `target`. The primary stops taking client writes for `holdMilliseconds` (each
/// request renews the hold; when it lapses the primary takes writes again by itself) and answers
/// whether the target holds everything it wrote, every write acknowledged; once it does, the primary
/// fences itself, so the target can be promoted without cutting an acknowledged write or answering
/// one `OUTCOME_UNKNOWN`.
public struct HandoverRequest: Sendable, Hashable {
    public var epoch: UInt64
    public var target: String
    public var holdMilliseconds: UInt32

    public init(epoch: UInt64, target: String, holdMilliseconds: UInt32) {
        self.epoch = epoch
        self.target = target
        self.holdMilliseconds = holdMilliseconds
    }
}

/// The answer to HANDOVER: whether the primary has fenced itself for the target (else the target is
/// still catching up), its last LSN and the target's durable LSN as the primary knows it.
public struct HandoverReply: Sendable, Hashable {
    public var handedOver: Bool
    public var lastLSN: UInt64
    public var targetDurableLSN: UInt64

    public init(handedOver: Bool, lastLSN: UInt64, targetDurableLSN: UInt64) {
        self.handedOver = handedOver
        self.lastLSN = lastLSN
        self.targetDurableLSN = targetDurableLSN
    }
}

extension ReplicationMessages {
    /// The longest a primary stops taking writes for one HANDOVER request.
    public static let maximumHandoverHoldMilliseconds: UInt32 = 10_000

    public static func encode(_ request: HandoverRequest, into writer: inout ByteWriter) {
        writer.writeU64(request.epoch)
        writer.writeString(request.target)
        writer.writeU32(request.holdMilliseconds)
    }

    public static func decodeHandover(from reader: inout ByteReader) throws(DecodeError) -> HandoverRequest {
        let epoch = try reader.readCounter()
        let target = try reader.readString(limit: maximumNodeIDBytes)
        let hold = try reader.readU32()
        guard (1...maximumHandoverHoldMilliseconds).contains(hold) else {
            throw reader.error("a handover's hold must be 1 ... \(maximumHandoverHoldMilliseconds) ms")
        }
        try reader.expectEnd()
        return HandoverRequest(epoch: epoch, target: target, holdMilliseconds: hold)
    }

    public static func encode(_ reply: HandoverReply, into writer: inout ByteWriter) {
        writer.writeU8(reply.handedOver ? 1 : 0)
        writer.writeU64(reply.lastLSN)
        writer.writeU64(reply.targetDurableLSN)
    }

    public static func decodeHandoverReply(from reader: inout ByteReader) throws(DecodeError) -> HandoverReply {
        let handedOver = try reader.readU8()
        guard handedOver <= 1 else { throw reader.error("a handover reply's state must be 0 or 1") }
        let reply = HandoverReply(handedOver: handedOver == 1, lastLSN: try reader.readCounter(), targetDurableLSN: try reader.readCounter())
        try reader.expectEnd()
        return reply
    }
}
