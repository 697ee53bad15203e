import LearnStoreModel
import Testing
@testable import LearnStoreProtocol

/// HANDOVER (docs/PROTOCOL.md, E.9): the worked example's bytes, the answer read back as written, and
/// requests a node refuses to decode.
@Suite struct HandoverMessageTests {
    private func decode(_ bytes: [UInt8]) throws -> HandoverRequest {
        try bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try ReplicationMessages.decodeHandover(from: &reader)
        }
    }

    @Test func theRequestOfTheWorkedExampleHasTheseBytes() throws {
        let request = HandoverRequest(epoch: 4, target: "n1", holdMilliseconds: 1000)
        var writer = ByteWriter(capacity: 32)
        ReplicationMessages.encode(request, into: &writer)
        #expect(hex(writer.bytes) == "04 00 00 00 00 00 00 00 02 6e 31 e8 03 00 00")
        #expect(try decode(writer.bytes) == request)
    }

    @Test func theAnswerReadsBackAsWritten() throws {
        for reply in [HandoverReply(handedOver: false, lastLSN: 90, targetDurableLSN: 88), HandoverReply(handedOver: true, lastLSN: 90, targetDurableLSN: 90)] {
            var writer = ByteWriter(capacity: 32)
            ReplicationMessages.encode(reply, into: &writer)
            let decoded = try writer.bytes.withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                return try ReplicationMessages.decodeHandoverReply(from: &reader)
            }
            #expect(decoded == reply)
        }
        #expect(throws: DecodeError.self) {
            try [UInt8]([2] + [UInt8](repeating: 0, count: 16)).withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                _ = try ReplicationMessages.decodeHandoverReply(from: &reader)
            }
        }
    }

    @Test(arguments: [
        ("a hold of 0", "0400000000000000026e3100000000"),
        ("a hold above 10 s", "0400000000000000026e3111270000"),
        ("bytes after the hold", "0400000000000000026e31e803000000"),
        ("a cut request", "0400000000000000026e"),
        ("a node id of 65 bytes", "040000000000000041" + String(repeating: "61", count: 65) + "e8030000"),
    ] as [(String, String)])
    func aMalformedRequestIsRefused(_ why: String, _ payload: String) {
        let bytes = stride(from: 0, to: payload.count, by: 2).map { offset -> UInt8 in
            let start = payload.index(payload.startIndex, offsetBy: offset)
            return UInt8(payload[start..<payload.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(throws: DecodeError.self, "\(why)") { _ = try decode(bytes) }
    }
}
