import LearnStoreModel

/// CATCH_UP (0xB8, docs/PROTOCOL.md E.7): a replica whose next record its primary's log no longer
/// holds asks for a copy of the primary's files (the request is a REPLICATE request body); the
/// primary answers with frames of the same opcode and request id, one message each: BEGIN, then per
/// file FILE and its DATA, then END.
public enum CatchUpMessage: Sendable, Hashable {
    /// The primary's epoch and history, the LSN the copy holds every record through, and how many
    /// files and bytes follow.
    case begin(epoch: UInt64, epochs: [EpochStart], throughLSN: UInt64, files: UInt32, bytes: UInt64)
    /// A file: its path in the data directory, its size, and how many of its first bytes follow in
    /// DATA messages (the rest are zeros).
    case file(path: String, size: UInt64, sentBytes: UInt64)
    /// The next bytes of the current file.
    case data([UInt8])
    case end

    /// The most bytes of one DATA message.
    public static let maximumDataBytes = 1 << 20

    public func encode(into writer: inout ByteWriter) {
        switch self {
        case .begin(let epoch, let epochs, let through, let files, let bytes):
            writer.writeU8(1)
            writer.writeU64(epoch)
            ReplicationMessages.encode(epochs, into: &writer)
            writer.writeU64(through)
            writer.writeU32(files)
            writer.writeU64(bytes)
        case .file(let path, let size, let sent):
            writer.writeU8(2)
            writer.writeString(path)
            writer.writeU64(size)
            writer.writeU64(sent)
        case .data(let bytes):
            writer.writeU8(3)
            writer.writeBytes(bytes)
        case .end:
            writer.writeU8(4)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CatchUpMessage {
        let message: CatchUpMessage
        switch try reader.readU8() {
        case 1:
            let epoch = try reader.readCounter()
            let epochs = try ReplicationMessages.decodeEpochs(from: &reader)
            message = .begin(epoch: epoch, epochs: epochs, throughLSN: try reader.readCounter(), files: try reader.readU32(), bytes: try reader.readU64())
        case 2:
            message = .file(path: try reader.readString(limit: 256), size: try reader.readU64(), sentBytes: try reader.readU64())
        case 3:
            guard reader.remaining <= maximumDataBytes else { throw reader.error("DATA of \(reader.remaining) bytes exceeds \(maximumDataBytes)") }
            message = .data([UInt8](try reader.readBytes(reader.remaining)))
        case 4:
            message = .end
        case let kind:
            throw reader.error("unknown CATCH_UP message kind \(kind)")
        }
        try reader.expectEnd()
        return message
    }
}
