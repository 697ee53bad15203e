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
        return LearnStoreError(.fromWire(code, name: name), message, field: field.isEmpty ? nil : field)
    }
}
