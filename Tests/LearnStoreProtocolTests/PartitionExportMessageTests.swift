import LearnStoreModel
import Testing
@testable import LearnStoreProtocol

/// PARTITION_EXPORT (docs/PROTOCOL.md, E.8): the request and the piece read back as written, and the
/// worked example's bytes are these.
@Suite struct PartitionExportMessageTests {
    @Test func theRequestOfTheWorkedExampleHasTheseBytes() throws {
        let request = PartitionExportRequest(sourceEpoch: 3, moveID: 7, partition: 5, mode: .changesPiece, tenant: "acme", section: 3, offset: 2000,
                                             tracking: 0x1122_3344_5566_7788)
        var writer = ByteWriter(capacity: 64)
        ReplicationMessages.encode(request, into: &writer)
        #expect(hex(writer.bytes) == "03 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00 05 00 00 00 02 04 61 63 6d 65 03 d0 07 00 00 00 00 00 00 "
            + "88 77 66 55 44 33 22 11")
        let decoded = try writer.bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try ReplicationMessages.decodePartitionExport(from: &reader)
        }
        #expect(decoded == request)
    }

    @Test func aPieceReadsBackAsWritten() throws {
        for piece in [
            PartitionExportPiece(end: true),
            PartitionExportPiece(end: false, tenant: "acme", sequence: 42, next: (0, 2000), mutationCount: 1, mutations: [6]),
            PartitionExportPiece(end: false, tenant: "acme", sequence: 42, next: nil, mutationCount: 0, mutations: []),
            PartitionExportPiece(end: false, tenant: "acme", sequence: 43, next: (3, 5), changes: true, mutationCount: 1, mutations: [8]),
        ] {
            var writer = ByteWriter(capacity: 64)
            ReplicationMessages.encode(piece, into: &writer)
            let decoded = try writer.bytes.withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                return try ReplicationMessages.decodePartitionExportPiece(from: &reader)
            }
            #expect(decoded == piece)
        }
    }

    @Test(arguments: [
        ("partition out of range", "0300000000000000" + "0700000000000000" + "00100000" + "00" + "00" + "00" + "0000000000000000" + "0000000000000000"),
        ("unknown mode", "0300000000000000" + "0700000000000000" + "05000000" + "06" + "00" + "00" + "0000000000000000" + "0000000000000000"),
        ("tenant past the end", "0300000000000000" + "0700000000000000" + "05000000" + "00" + "ff01" + "61"),
        ("no tracking", "0300000000000000" + "0700000000000000" + "05000000" + "01" + "00" + "00" + "0000000000000000"),
        ("trailing bytes", "0300000000000000" + "0700000000000000" + "05000000" + "01" + "00" + "00" + "0000000000000000" + "0000000000000000" + "00"),
    ])
    func aMalformedRequestIsADecodeError(_ what: String, _ hexText: String) {
        let bytes = stride(from: 0, to: hexText.count, by: 2).map { index -> UInt8 in
            let start = hexText.index(hexText.startIndex, offsetBy: index)
            return UInt8(hexText[start..<hexText.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(throws: DecodeError.self, "\(what)") {
            try bytes.withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                _ = try ReplicationMessages.decodePartitionExport(from: &reader)
            }
        }
    }
}
