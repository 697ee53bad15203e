import CanvasOutcomes
import FuzzSupport
import LearnStoreModel

/// The JSON parsers: the first input byte picks one, the rest is the JSON text. What a parser accepts
/// must come back through the form LearnStore writes it in: a record through its JSON and its binary
/// codec (export, then import or WAL replay), a body through its JSON, a Canvas live event through
/// the outcome row it is stored as (WAL, snapshot and export).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let selector = input.u8()
    let text = Array(input.rest())
    switch selector % 5 {
    case 0: learningRecord(text)
    case 1: recordBody(text)
    case 2: canvasEvent(text)
    case 3: outcomeRow(text)
    default: plainJSON(text)
    }
    return 0
}

func learningRecord(_ text: [UInt8]) {
    guard let json = try? JSONValue.parse(text), let record = try? LearningRecord(json: json) else { return }
    let exported = record.json.serialized
    do {
        let again = try LearningRecord(json: try JSONValue.parse(exported))
        guard again.json.serialized == exported else { fuzzFailure("record JSON round trip changed \(exported) to \(again.json.serialized)") }
    } catch {
        fuzzFailure("an exported record does not import: \(error); \(exported)")
    }
    let binary = RecordCodec.encode(record)
    do {
        let decoded = try binary.withUnsafeBytes { raw throws(DecodeError) in
            var reader = ByteReader(raw)
            return try RecordCodec.decodeRecord(from: &reader)
        }
        guard decoded.json.serialized == exported else { fuzzFailure("record binary round trip changed \(exported) to \(decoded.json.serialized)") }
    } catch {
        fuzzFailure("an imported record's binary form does not decode: \(error); \(exported)")
    }
}

func recordBody(_ text: [UInt8]) {
    guard let json = try? JSONValue.parse(text), let body = try? RecordBody(json: json) else { return }
    let written = body.json.serialized
    do {
        _ = try RecordBody(json: try JSONValue.parse(written))
    } catch {
        fuzzFailure("a body's own JSON does not parse: \(error); \(written)")
    }
}

func canvasEvent(_ text: [UInt8]) {
    guard let event = try? OutcomeEvent.parse(bytes: text) else { return }
    _ = event.entity.json.serialized
    storedRowRoundTrip(OutcomeRecord(storing: event.entity))
}

func outcomeRow(_ text: [UInt8]) {
    guard let json = try? JSONValue.parse(text), let row = try? OutcomeRecord(exportJSON: json) else { return }
    storedRowRoundTrip(row)
}

/// A stored row must decode from its binary form (WAL, snapshot) and import from its export JSON.
func storedRowRoundTrip(_ row: OutcomeRecord) {
    let encoded = row.encoded
    do {
        let decoded = try OutcomeRecord.decode(encoded)
        guard decoded.encoded == encoded else { fuzzFailure("outcome row binary round trip is not stable: \(row)") }
    } catch {
        fuzzFailure("a stored outcome row does not decode: \(error); \(row)")
    }
    let exported = row.exportJSON.serialized
    do {
        _ = try OutcomeRecord(exportJSON: try JSONValue.parse(exported))
    } catch {
        fuzzFailure("an exported outcome row does not import: \(error); \(exported)")
    }
}

func plainJSON(_ text: [UInt8]) {
    guard let json = try? JSONValue.parse(text) else { return }
    let written = json.serialized
    do {
        let again = try JSONValue.parse(written)
        guard again.serialized == written else { fuzzFailure("JSON round trip changed \(written) to \(again.serialized)") }
    } catch {
        fuzzFailure("serialized JSON does not parse: \(error); \(written)")
    }
}
