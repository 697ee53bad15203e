import FuzzSupport
import LearnStoreProtocol
import NIOCore

/// The frame decoder on a byte stream: the first input byte picks the frame size limit and how the
/// rest arrives (one piece, or chunks of 1-16 bytes as a socket may deliver it). Every step must
/// return a whole frame, ask for more without moving the reader index, or throw a framing error;
/// the frames must be the same however the bytes arrive.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let control = input.u8()
    let limit = control & 0x80 == 0 ? 1 << 16 : 64 + Int(control & 0x3F)
    let decoder = FrameDecoder(maximumFrameBytes: limit)
    let stream = input.rest()
    let whole = decode(stream, chunk: stream.count, decoder: decoder)
    let chunked = decode(stream, chunk: Int(control & 0x0F) + 1, decoder: decoder)
    guard whole == chunked else { fuzzFailure("frames differ by chunking: \(whole) vs \(chunked)") }
    return 0
}

/// One step of splitting a stream.
enum Step: Equatable {
    case frame(FrameHeader, [UInt8])
    case error(UInt16)
    case incomplete(Int)
}

/// What came out of the stream: each frame's header and payload, then how it ended.
func decode(_ stream: UnsafeRawBufferPointer, chunk: Int, decoder: FrameDecoder) -> [Step] {
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    var steps: [Step] = []
    var offset = 0
    while offset < stream.count {
        let end = min(stream.count, offset + max(1, chunk))
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
        offset = end
        while true {
            let before = buffer.readerIndex
            do {
                guard let frame = try decoder.next(from: &buffer) else {
                    guard buffer.readerIndex == before else { fuzzFailure("need-more moved the reader index") }
                    break
                }
                let length = buffer.readerIndex - before
                guard length == FrameHeader.size + frame.payload.readableBytes, length <= decoder.maximumFrameBytes else {
                    fuzzFailure("frame of \(length) bytes with a payload of \(frame.payload.readableBytes)")
                }
                steps.append(.frame(frame.header, Array(frame.payload.readableBytesView)))
            } catch {
                guard buffer.readerIndex == before else { fuzzFailure("a framing error moved the reader index") }
                steps.append(.error(error.code.rawValue))
                return steps
            }
        }
    }
    if buffer.readableBytes > 0 { steps.append(.incomplete(buffer.readableBytes)) }
    return steps
}
