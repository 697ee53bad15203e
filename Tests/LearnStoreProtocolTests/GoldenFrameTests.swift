import Foundation
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import Testing

/// Golden frames: checked-in bytes of the connection and record messages. A codec change that alters
/// any of them fails here (and in the worked examples of docs/PROTOCOL.md, appendix A). To accept a
/// deliberate format change, regenerate with `LEARNSTORE_WRITE_GOLDEN=1 swift test --filter GoldenFrameTests`
/// and update the appendix.
@Suite struct GoldenFrameTests {
    static func url(_ name: String) -> URL { SourceTree.goldenDirectory.appendingPathComponent(name + ".bin") }

    static func golden(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    @Test(arguments: GoldenFrame.all)
    func goldenFileDecodesToTheFixedInputsAndTheInputsEncodeToIt(frame: GoldenFrame) throws {
        let encoded = frame.bytes
        if TestEnvironment.flag("LEARNSTORE_WRITE_GOLDEN") {
            try Data(encoded).write(to: Self.url(frame.name))
        }
        let bytes = try Self.golden(frame.name)
        #expect(encoded == bytes, "\(frame.name): the codecs no longer produce the golden bytes\n  golden:  \(hex(bytes))\n  encoded: \(hex(encoded))")

        var buffer = ByteBuffer(bytes: bytes)
        let decoded = try #require(try FrameDecoder().next(from: &buffer))
        #expect(buffer.readableBytes == 0, "one frame, nothing after it")
        #expect(decoded.header == frame.header)
        #expect(try frame.payloadMatches(Array(decoded.payload.readableBytesView)), "\(frame.name): payload does not decode to the fixed inputs")
    }

    @Test func everyGoldenFileIsChecked() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: SourceTree.goldenDirectory.path)
            .filter { $0.hasSuffix(".bin") }.map { String($0.dropLast(4)) }
        #expect(Set(names) == Set(GoldenFrame.all.map(\.name)))
    }

    @Test func theFixedInputsAreWhatTheDocumentSays() {
        #expect(GoldenInputs.recordID.description == "lr_01JXT21Q0038NKRKAYDXR834N3")
        #expect(GoldenInputs.createdAt.rfc3339 == "2025-06-15T15:06:40.000Z")
        #expect(GoldenInputs.completedAt.rfc3339 == "2025-06-15T00:00:00.000Z")
        #expect(GoldenInputs.person.description == "5f0c1e2a-7b3d-4c9e-9a1b-000000000042")
    }
}
