import LearnStoreModel

/// The payload of an error response: code, name, message, field.
public enum ErrorBody {
    public static func encode(_ error: LearnStoreError, into writer: inout ByteWriter) {
        writer.writeU16(error.code.rawValue)
        writer.writeString(error.code.name)
        writer.writeString(error.message)
        writer.writeString(error.field ?? "")
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> LearnStoreError {
        let code = try reader.readU16()
        let name = try reader.readString(limit: 256)
        let message = try reader.readString(limit: 1 << 16)
        let field = try reader.readString(limit: 256)
        var error = LearnStoreError(.fromWire(code, name: name), message, field: field.isEmpty ? nil : field)
        // MOVED's target follows the body; a MOVED without it decodes without an address.
        if error.code == .moved, reader.remaining > 0 {
            _ = try reader.readU32()
            _ = try reader.readU64()
            error.primaryAddress = try reader.readString(limit: 261)
        }
        return error
    }

    /// MOVED (docs/PROTOCOL.md 6.2): the error body, then `u32 partition`, `u64 epoch`, `string address`.
    public static func encodeMoved(_ message: String, partition: UInt32 = 0, epoch: UInt64, address: String, into writer: inout ByteWriter) {
        encode(LearnStoreError(.moved, message), into: &writer)
        writer.writeU32(partition)
        writer.writeU64(epoch)
        writer.writeString(address)
    }
}
