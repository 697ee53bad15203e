import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport
import NIOCore
import Testing

/// A decoded frame as plain values, so frames from different feeds can be compared.
struct DecodedFrame: Equatable, CustomStringConvertible {
    var header: FrameHeader
    var payload: [UInt8]

    init(_ header: FrameHeader, _ payload: [UInt8]) {
        self.header = header
        self.payload = payload
    }

    init(_ frame: Frame) { self.init(frame.header, Array(frame.payload.readableBytesView)) }

    var description: String { "op 0x\(String(header.opcode, radix: 16)) flags \(header.flags) id \(header.requestID) payload \(payload.count) B" }

    var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.writeFrame(header) { $0.writeBytes(payload) }
        return writer.bytes
    }
}

@Suite struct FrameDecoderTests {
    /// A stream of `count` frames with random headers and payload sizes from 0 to a few KiB, plus one
    /// payload larger than any split below.
    static func stream(seed: UInt64, count: Int) -> (bytes: [UInt8], frames: [DecodedFrame]) {
        var random = SeededGenerator(seed: seed)
        var frames: [DecodedFrame] = []
        for index in 0..<count {
            let size: Int
            switch Int.random(in: 0..<10, using: &random) {
            case 0: size = 0
            case 1...6: size = Int.random(in: 1...64, using: &random)
            default: size = Int.random(in: 65...4000, using: &random)
            }
            let header = FrameHeader(opcode: UInt8.random(in: 0...255, using: &random), flags: UInt8.random(in: 0...255, using: &random),
                                     requestID: UInt32.random(in: 0...UInt32.max, using: &random))
            frames.append(DecodedFrame(header, random.bytes(index == count / 2 ? 70_000 : size)))
        }
        return (frames.flatMap(\.bytes), frames)
    }

    /// Feeds `chunks` one after another into one buffer, taking every frame the decoder returns.
    static func decode(_ chunks: [ArraySlice<UInt8>], decoder: FrameDecoder = FrameDecoder(), discardEvery: Int = 0) throws -> [DecodedFrame] {
        var buffer = ByteBuffer()
        var frames: [DecodedFrame] = []
        for (index, chunk) in chunks.enumerated() {
            buffer.writeBytes(chunk)
            while let frame = try decoder.next(from: &buffer) { frames.append(DecodedFrame(frame)) }
            // The server compacts its buffer now and then; the decoder must not care where the reader index is.
            if discardEvery > 0 && index % discardEvery == 0 { buffer.discardReadBytes() }
        }
        #expect(buffer.readableBytes == 0, "bytes left over after the last frame")
        return frames
    }

    @Test func manyFramesDecodeIdenticallyHoweverTheStreamIsSplit() async throws {
        try await offTheCooperativePool { try Self.decodeSplits() }
    }

    static func decodeSplits() throws {
        let (bytes, expected) = Self.stream(seed: 0x5EED_F4A3, count: 300)
        #expect(try Self.decode([bytes[...]]) == expected, "all at once")
        #expect(try Self.decode(bytes.indices.map { bytes[$0...$0] }) == expected, "byte by byte")
        for seed in 1...24 as ClosedRange<UInt64> {
            var random = SeededGenerator(seed: seed)
            var chunks: [ArraySlice<UInt8>] = []
            var start = 0
            // Small, medium and large pieces, so splits fall inside lengths, headers and payloads.
            let largest = [3, 17, 600, 9000][Int(seed) % 4]
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...largest, using: &random))
                chunks.append(bytes[start..<end])
                start = end
            }
            #expect(try Self.decode(chunks, discardEvery: Int(seed % 5)) == expected, "random split, seed \(seed)")
        }
    }

    @Test func aFrameComesOutOnlyWithItsLastByte() throws {
        let frame = DecodedFrame(FrameHeader(opcode: Opcode.ping, requestID: 7), [1, 2, 3])
        var partial = ByteBuffer()
        for (index, byte) in frame.bytes.enumerated() {
            partial.writeInteger(byte)
            let next = try FrameDecoder().next(from: &partial)
            #expect((next != nil) == (index == frame.bytes.count - 1))
            if let next { #expect(DecodedFrame(next) == frame) }
        }
    }

    @Test func needingMoreBytesLeavesTheBufferUntouched() throws {
        var random = SeededGenerator(seed: 99)
        let frames = [5, 300, 0].map { DecodedFrame(FrameHeader(opcode: 0x12, requestID: UInt32($0)), random.bytes($0)) }
        let bytes = frames.flatMap(\.bytes)
        let first = frames[0].bytes.count
        // Every prefix of the second frame, after the first frame and behind a consumed junk prefix.
        for cut in first..<(first + frames[1].bytes.count) {
            var buffer = ByteBuffer(bytes: [0xAA, 0xBB, 0xCC] + bytes[0..<cut])
            buffer.moveReaderIndex(forwardBy: 3)
            #expect(try FrameDecoder().next(from: &buffer).map(DecodedFrame.init) == frames[0])
            let readerIndex = buffer.readerIndex
            let writerIndex = buffer.writerIndex
            let remaining = Array(buffer.readableBytesView)
            #expect(readerIndex == 3 + first)
            for _ in 0..<2 {
                #expect(try FrameDecoder().next(from: &buffer) == nil, "cut at \(cut)")
                #expect(buffer.readerIndex == readerIndex && buffer.writerIndex == writerIndex)
                #expect(Array(buffer.readableBytesView) == remaining)
            }
        }
    }

    static func lengthOnly(_ length: UInt32, then extra: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(length, endianness: .little)
        buffer.writeBytes(extra)
        return buffer
    }

    static func framingError(_ buffer: ByteBuffer, decoder: FrameDecoder = FrameDecoder()) -> FramingError? {
        var copy = buffer
        do {
            _ = try decoder.next(from: &copy)
            return nil
        } catch {
            #expect(copy.readerIndex == buffer.readerIndex, "a failed decode moved the reader index")
            return error
        }
    }

    @Test func lengthsBelowTheMinimumAreBadFrames() throws {
        for length: UInt32 in 0..<6 {
            // Known as soon as the length field is in, whatever follows.
            for extra in [[], [UInt8](repeating: 0, count: 3), [UInt8](repeating: 0x41, count: 20)] {
                let error = Self.framingError(Self.lengthOnly(length, then: extra))
                #expect(error?.code == .badFrame, "length \(length)")
            }
        }
        // The smallest legal frame: a header and no payload.
        var smallest = Self.lengthOnly(6, then: [Opcode.ping, 0, 1, 0, 0, 0])
        #expect(try FrameDecoder().next(from: &smallest).map(DecodedFrame.init) == DecodedFrame(FrameHeader(opcode: Opcode.ping, requestID: 1), []))
    }

    @Test func lengthsAboveTheLimitAreTooLargeBeforeTheBodyArrives() throws {
        let decoder = FrameDecoder(maximumFrameBytes: 1024)
        // length + 4 = 1024 is the largest legal frame: it needs more bytes, it is no error.
        var atLimit = Self.lengthOnly(1020)
        #expect(try decoder.next(from: &atLimit) == nil)
        atLimit.writeBytes([Opcode.ping, 0, 9, 0, 0, 0] + [UInt8](repeating: 7, count: 1014))
        #expect(try decoder.next(from: &atLimit).map { $0.payload.readableBytes } == 1014)
        for length: UInt32 in [1021, 4096, 1 << 24, 1 << 31, UInt32.max] {
            #expect(Self.framingError(Self.lengthOnly(length), decoder: decoder)?.code == .frameTooLarge, "length \(length)")
        }
        let standard = FrameDecoder()
        #expect(standard.maximumFrameBytes == 16 << 20)
        var largestDefault = Self.lengthOnly(UInt32(16 << 20) - 4)
        #expect(try standard.next(from: &largestDefault) == nil)
        #expect(Self.framingError(Self.lengthOnly(UInt32(16 << 20) - 3))?.code == .frameTooLarge)
    }

    @Test func fewerThanFourBytesNeedMore() throws {
        for count in 0..<4 {
            var buffer = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: count))
            #expect(try FrameDecoder().next(from: &buffer) == nil)
            #expect(buffer.readableBytes == count)
        }
    }
}
