import LearnStoreModel
import Testing
@testable import LearnStoreProtocol

/// Epochs, LSNs and sequences a peer sends are at most 2^63 - 1 (docs/PROTOCOL.md, E.1): a node
/// records epochs and promises in a file it reads back at its start, which refuses larger numbers, so
/// a PROMISE of epoch 2^64 - 1 would otherwise stop the node from starting again.
@Suite struct ReplicationMessageRangeTests {
    private static let tooLarge = UInt64(Int64.max) + 1

    private func decodes(_ bytes: [UInt8], _ decode: (inout ByteReader) throws(DecodeError) -> Void) -> Bool {
        bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            do {
                try decode(&reader)
                return true
            } catch {
                return false
            }
        }
    }

    @Test func aPromoteOrPromiseOfAnEpochAboveTheLimitIsRefused() {
        for epoch in [UInt64(Int64.max), Self.tooLarge, .max] {
            var writer = ByteWriter(capacity: 24)
            ReplicationMessages.encode(PromoteRequest(epoch: epoch, promotion: UUID16(high: 1, low: 2)), into: &writer)
            #expect(decodes(writer.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodePromote(from: &r) } == (epoch <= UInt64(Int64.max)))
        }
    }

    @Test func replicationFramesRefuseCountersAboveTheLimit() {
        var replicate = ByteWriter(capacity: 64)
        ReplicationMessages.encode(ReplicateRequest(epochs: [EpochStart(epoch: 1, firstLSN: 1), EpochStart(epoch: Self.tooLarge, firstLSN: 9)], promised: 1, lastLSN: 9), into: &replicate)
        #expect(!decodes(replicate.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodeReplicate(from: &r) })

        var records = ByteWriter(capacity: 64)
        ReplicationMessages.encode(ReplicationRecords(epoch: 2, commitLSN: Self.tooLarge, inSync: true, throughLSN: 3, records: []), into: &records)
        #expect(!decodes(records.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodeRecords(from: &r) })

        var ack = ByteWriter(capacity: 32)
        ReplicationMessages.encode(ReplicationAck(epoch: 2, durableLSN: .max, appliedLSN: 1), into: &ack)
        #expect(!decodes(ack.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodeAck(from: &r) })

        var handover = ByteWriter(capacity: 32)
        ReplicationMessages.encode(HandoverRequest(epoch: .max, target: "n1", holdMilliseconds: 1_000), into: &handover)
        #expect(!decodes(handover.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodeHandover(from: &r) })

        var fine = ByteWriter(capacity: 64)
        ReplicationMessages.encode(ReplicationRecords(epoch: 2, commitLSN: UInt64(Int64.max), inSync: true, throughLSN: 3, records: []), into: &fine)
        #expect(decodes(fine.bytes) { (r) throws(DecodeError) in _ = try ReplicationMessages.decodeRecords(from: &r) })
    }
}
