import LearnStoreModel
import NIOCore

/// The 10-byte frame header: length (u32, bytes after itself), opcode, flags, request id.
public struct FrameHeader: Sendable, Hashable {
    public static let size = 10
    /// Bytes of the header counted by `length` (opcode + flags + request id).
    public static let countedSize = 6
    public static let errorFlag: UInt8 = 0x01

    public var opcode: UInt8
    public var flags: UInt8
    public var requestID: UInt32

    public init(opcode: UInt8, flags: UInt8 = 0, requestID: UInt32) {
        self.opcode = opcode
        self.flags = flags
        self.requestID = requestID
    }

    public var isError: Bool { flags & Self.errorFlag != 0 }
}

/// One whole frame: its header and its payload (a slice sharing the read buffer's storage).
public struct Frame: Sendable {
    public var header: FrameHeader
    public var payload: ByteBuffer

    public init(header: FrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// Runs `body` with a reader over the payload bytes. Inlinable so that callers in other modules
    /// get a specialized copy: the generic one looked up `Result<R, DecodeError>` metadata at run time
    /// on every request (2 % of server CPU on GET).
    @inlinable
    public func readPayload<R>(_ body: (inout ByteReader) throws(DecodeError) -> R) throws(DecodeError) -> R {
        let result: Result<R, DecodeError> = payload.withUnsafeReadableBytes { raw in
            var reader = ByteReader(raw)
            do throws(DecodeError) { return .success(try body(&reader)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// Why a byte stream cannot be split into frames any more; the connection must close.
public struct FramingError: Error, Sendable, Equatable {
    public var code: LearnStoreError.Code
    public var message: String
}

/// Splits a byte stream into frames: a step function that returns one whole frame, or nil when more
/// bytes are needed, leaving the buffer's reader index where it was. Every length is checked against
/// the limit before anything is allocated.
public struct FrameDecoder: Sendable {
    public let maximumFrameBytes: Int

    public init(maximumFrameBytes: Int = 16 << 20) {
        self.maximumFrameBytes = maximumFrameBytes
    }

    public func next(from buffer: inout ByteBuffer) throws(FramingError) -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return nil
        }
        guard length >= FrameHeader.countedSize else {
            throw FramingError(code: .badFrame, message: "frame length \(length) is below the minimum of \(FrameHeader.countedSize)")
        }
        guard Int(length) + 4 <= maximumFrameBytes else {
            throw FramingError(code: .frameTooLarge, message: "frame of \(Int(length) + 4) bytes exceeds the limit of \(maximumFrameBytes)")
        }
        guard buffer.readableBytes >= Int(length) + 4 else { return nil }
        let start = buffer.readerIndex
        let opcode = buffer.getInteger(at: start + 4, as: UInt8.self)!
        let flags = buffer.getInteger(at: start + 5, as: UInt8.self)!
        let requestID = buffer.getInteger(at: start + 6, endianness: .little, as: UInt32.self)!
        let payload = buffer.getSlice(at: start + FrameHeader.size, length: Int(length) - FrameHeader.countedSize)!
        buffer.moveReaderIndex(forwardBy: Int(length) + 4)
        return Frame(header: FrameHeader(opcode: opcode, flags: flags, requestID: requestID), payload: payload)
    }
}

extension ByteWriter {
    /// Writes a frame: header, then whatever `payload` writes, then patches the length.
    @inline(__always)
    public mutating func writeFrame(_ header: FrameHeader, payload: (inout ByteWriter) -> Void) {
        let start = count
        writeU32(0)
        writeU8(header.opcode)
        writeU8(header.flags)
        writeU32(header.requestID)
        payload(&self)
        setU32(UInt32(count - start - 4), at: start)
    }

    /// Writes an error response frame (docs/PROTOCOL.md, section 6.1).
    public mutating func writeErrorFrame(opcode: UInt8, requestID: UInt32, _ error: LearnStoreError) {
        writeFrame(FrameHeader(opcode: opcode, flags: FrameHeader.errorFlag, requestID: requestID)) { writer in
            ErrorBody.encode(error, into: &writer)
        }
    }
}

extension ByteBuffer {
    /// Writes a frame whose payload is already encoded.
    public mutating func writeFrame(_ header: FrameHeader, payload: [UInt8]) {
        writeInteger(UInt32(FrameHeader.countedSize + payload.count), endianness: .little)
        writeInteger(header.opcode)
        writeInteger(header.flags)
        writeInteger(header.requestID, endianness: .little)
        writeBytes(payload)
    }
}
