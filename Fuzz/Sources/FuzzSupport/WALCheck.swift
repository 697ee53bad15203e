import LearnStoreModel
import LearnStorePersistence

/// What goes into the WAL must come back out: a record's encoding decodes to a record that encodes
/// to the same bytes.
public enum WALCheck {
    public static func roundTrip(_ record: WALRecord) {
        let encoded = record.encoded
        do {
            let decoded = try encoded.withUnsafeBytes { raw throws(DecodeError) in
                try WALRecord.decodeBody(UnsafeRawBufferPointer(rebasing: raw[WALRecord.headerSize...]))
            }
            guard decoded.encoded == encoded else { fuzzFailure("a WAL record changes through its own encoding") }
        } catch {
            fuzzFailure("a WAL record's encoding does not decode: \(error)")
        }
    }
}
