import CanvasOutcomes
import FuzzSupport
import LearnStoreModel
import LearnStoreProtocol

/// Every payload decoder of the protocol: the first input byte picks one, the rest is its payload.
/// Requests (what the server decodes) come first, then the steps the server takes right after
/// decoding (cursors, ingested event JSON, imported outcome rows), then responses (what the client
/// decodes). A decoder must return a value or throw a `DecodeError` whose offset lies in the payload;
/// a request that decodes must survive its own re-encoding (encode ∘ decode is a fixed point).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let selector = Int(input.u8())
    let payload = input.rest()
    decoders[selector % decoders.count](payload)
    return 0
}

typealias Decode<T> = (inout ByteReader) throws(DecodeError) -> T

/// Decodes `payload`; with `reencode`, the value's encoding must decode and encode to the same bytes.
func check<T>(_ payload: UnsafeRawBufferPointer, _ decode: Decode<T>, reencode: ((T, inout ByteWriter) -> Void)? = nil) -> T? {
    let value: T
    do {
        var reader = ByteReader(payload)
        value = try decode(&reader)
    } catch {
        guard (0...payload.count).contains(error.offset) else { fuzzFailure("error offset \(error.offset) outside 0...\(payload.count): \(error)") }
        return nil
    }
    guard let reencode else { return value }
    var first = ByteWriter()
    reencode(value, &first)
    let again: T
    do {
        again = try first.bytes.withUnsafeBytes { raw throws(DecodeError) in
            var reader = ByteReader(raw)
            return try decode(&reader)
        }
    } catch {
        fuzzFailure("a decoded value's encoding does not decode: \(error); encoding \(first.bytes)")
    }
    var second = ByteWriter()
    reencode(again, &second)
    guard first.bytes == second.bytes else { fuzzFailure("re-encoding is not stable: \(first.bytes) then \(second.bytes)") }
    return value
}

let course = ContextRef(type: "Course", id: "1")

let decoders: [@Sendable (UnsafeRawBufferPointer) -> Void] = [
    // Requests.
    { _ = check($0, { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) },
                reencode: { v, w in RecordMessages.encodeCreate(v.0, idempotencyKey: v.1, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 1000) },
                reencode: { v, w in RecordMessages.encodeCreateBatch(v.0, idempotencyKey: v.1, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }, reencode: { v, w in w.writeRecordID(v) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) },
                reencode: { v, w in RecordMessages.encodePatch(v.0, v.1, expectedUpdatedAt: v.2, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) },
                reencode: { v, w in RecordMessages.encodePurge(v.0, dryRun: v.1, into: &w) }) },
    { payload in
        guard let decoded = check(payload, { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }) else { return }
        if let cursor = decoded.cursorBytes { _ = try? ListCursor(bytes: cursor) }
    },
    { payload in
        guard let events = check(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) },
                                 reencode: { v, w in OutcomeMessages.encodeIngest(v, into: &w) }) else { return }
        for event in events { _ = try? OutcomeEvent.parse(bytes: event) }
    },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) },
                reencode: { v, w in OutcomeMessages.encodeGet(v.0, key: v.1, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeTree(from: &r) },
                reencode: { v, w in OutcomeMessages.encodeTree(v, into: &w) }) },
    { payload in
        guard let decoded = check(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) }) else { return }
        _ = try? OutcomeMessages.cursor(decoded.cursor)
    },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeContextRequest(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }, reencode: { v, w in
        RollupMessages.encodeRollup(userUUID: v.userUUID, outcomeID: v.outcomeID, context: v.context, options: v.options, into: &w)
    }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }, reencode: { v, w in
        RollupMessages.encodeStudentRollups(userUUID: v.userUUID, context: v.context, options: v.options, into: &w)
    }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }, reencode: { v, w in
        RollupMessages.encodeAggregates(context: v.context, options: v.options, into: &w)
    }) },
    { _ = check($0, { (r) throws(DecodeError) in try AdminMessages.decodeSnapshot(from: &r) },
                reencode: { v, w in AdminMessages.encodeSnapshot(force: v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) },
                reencode: { v, w in AdminMessages.encodeRestore(v, into: &w) }) },
    { payload in
        guard let decoded = check(payload, { (r) throws(DecodeError) in try AdminMessages.decodeImport(from: &r, maximumCount: 1000) },
                                  reencode: { v, w in AdminMessages.encodeImport(records: v.0, outcomeRows: v.1, into: &w) }) else { return }
        for row in decoded.1 {
            if let json = try? JSONValue.parse(row) { _ = try? OutcomeRecord(exportJSON: json) }
        }
    },
    // Responses.
    { _ = check($0, { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }, reencode: { v, w in ErrorBody.encode(v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordCodec.decodeRecord(from: &r) }, reencode: { v, w in RecordCodec.encode(v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponseIDs(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) }) },
    { payload in
        for kind in OutcomeEntityKind.allCases {
            _ = check(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(kind, from: &r) })
        }
    },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) },
                reencode: { v, w in OutcomeMessages.encodeEntities(v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) },
                reencode: { v, w in OutcomeMessages.encodeResultPage(v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) },
                reencode: { v, w in OutcomeMessages.encodeProficiencyResponse(v, into: &w) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollupResponse(from: &r, userUUID: "u", context: course) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollupsResponse(from: &r, userUUID: "u", context: course) }) },
    { _ = check($0, { (r) throws(DecodeError) in try RollupMessages.decodeAggregatesResponse(from: &r, context: course) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AdminMessages.decodeRestoreResponse(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AdminMessages.decodeImportResponse(from: &r) }) },
    { _ = check($0, { (r) throws(DecodeError) in try AdminMessages.decodeSnapshotResponse(from: &r) }) },
]
