import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import Testing

@Suite struct FrameDecoderTests {
    @Test func wholeFrameAtOnceAndByteByByte() throws {
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: Opcode.ping, requestID: 7)) { $0.writeBytes([1, 2, 3]) }
        let decoder = FrameDecoder()
        var whole = ByteBuffer(bytes: writer.bytes)
        let frame = try #require(try decoder.next(from: &whole))
        #expect(frame.header == FrameHeader(opcode: Opcode.ping, requestID: 7))
        #expect(Array(frame.payload.readableBytesView) == [1, 2, 3])
        #expect(whole.readableBytes == 0)

        var partial = ByteBuffer()
        for (index, byte) in writer.bytes.enumerated() {
            partial.writeInteger(byte)
            let next = try decoder.next(from: &partial)
            #expect((next != nil) == (index == writer.bytes.count - 1))
        }
    }
}
