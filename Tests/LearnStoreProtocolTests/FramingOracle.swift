import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// What a frame decoder must make of a stream, computed independently from the length field.
enum FramingOracle {
    enum Step: Equatable {
        case frame(DecodedFrame)
        case needMore
        case error(LearnStoreError.Code)
    }

    static func steps(_ bytes: [UInt8], maximumFrameBytes: Int) -> [Step] {
        var steps: [Step] = []
        var offset = 0
        while true {
            guard bytes.count - offset >= 4 else { return steps + [.needMore] }
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            if length < 6 { return steps + [.error(.badFrame)] }
            if length + 4 > maximumFrameBytes { return steps + [.error(.frameTooLarge)] }
            guard bytes.count - offset >= length + 4 else { return steps + [.needMore] }
            let header = FrameHeader(
                opcode: bytes[offset + 4], flags: bytes[offset + 5],
                requestID: UInt32(bytes[offset + 6]) | UInt32(bytes[offset + 7]) << 8 | UInt32(bytes[offset + 8]) << 16 | UInt32(bytes[offset + 9]) << 24)
            steps.append(.frame(DecodedFrame(header, Array(bytes[(offset + 10)..<(offset + 4 + length)]))))
            offset += length + 4
        }
    }

    /// The decoder's steps on `bytes` delivered in `chunks` pieces.
    static func decoderSteps(_ bytes: [UInt8], chunkSize: Int, decoder: FrameDecoder) -> [Step] {
        var steps: [Step] = []
        var buffer = ByteBuffer()
        var start = 0
        repeat {
            let end = min(bytes.count, start + chunkSize)
            buffer.writeBytes(bytes[start..<end])
            start = end
            do {
                while let frame = try decoder.next(from: &buffer) { steps.append(.frame(DecodedFrame(frame))) }
            } catch {
                return steps + [.error(error.code)]
            }
        } while start < bytes.count
        return steps + [.needMore]
    }
}
